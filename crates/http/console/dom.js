// Builds DOM nodes. Text from the API only ever becomes text nodes or
// attribute values (never HTML), so a queue named `<img onerror=…>` shows as
// that text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function apply(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else if (name === 'style' && typeof value === 'object') {
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      Object.assign(node.style, value);
    } else if (name === 'dataset') {
      for (const [key, data] of Object.entries(value)) node.dataset[key] = String(data);
    } else {
      node.setAttribute(name === 'className' ? 'class' : name, value === true ? '' : String(value));
    }
  }
}

/** An HTML element: h('td', {class: 'num'}, '42'). */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** Replaces everything inside `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/**
 * A table. `columns`: [{label, num?, cell(row) → node|text, class?}];
 * `rows`: the data; `empty`: what to say when there are none.
 */
export function table(columns, rows, { empty = 'Nothing here yet.', name, key, onRow } = {}) {
  const head = h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.label))));
  const body = h('tbody');
  if (rows.length === 0) {
    body.append(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
  }
  for (const row of rows) {
    const tr = h('tr', { dataset: key ? { name: key(row) } : undefined, class: onRow ? 'clickable' : null });
    for (const column of columns) {
      tr.append(h('td', { class: [column.num ? 'num' : '', column.class || ''].join(' ').trim() || null }, column.cell(row)));
    }
    if (onRow) tr.addEventListener('click', (event) => { if (!event.target.closest('a,button')) onRow(row); });
    body.append(tr);
  }
  return h('table', { class: 'grid', dataset: name ? { table: name } : undefined }, head, body);
}

/** A link to a console route; `parts` are URI-encoded. */
export function link(text, ...parts) {
  return h('a', { href: '#/' + parts.map(encodeURIComponent).join('/') }, text);
}

/** A small coloured label. */
export function badge(text, tone = 'neutral') {
  return h('span', { class: `badge badge-${tone}` }, text);
}

/** A page header: title, optional subtitle and actions on the right. */
export function header(title, { sub, actions = [], crumbs = [] } = {}) {
  return h('header', { class: 'page-head' },
    h('div', null,
      crumbs.length ? h('div', { class: 'crumbs' }, crumbs.map((c, i) => [i ? ' / ' : '', c])) : null,
      h('h1', null, title),
      sub ? h('p', { class: 'muted' }, sub) : null),
    h('div', { class: 'actions' }, actions));
}

/** A titled panel. */
export function panel(title, ...children) {
  return h('section', { class: 'panel' }, title ? h('h2', null, title) : null, children);
}

/** A row of key figures: [[label, value, tone?]]. */
export function stats(items) {
  return h('div', { class: 'stats' }, items.map(([label, value, tone]) =>
    h('div', { class: `stat${tone ? ' stat-' + tone : ''}`, dataset: { stat: label.toLowerCase().replace(/[^a-z]+/g, '-') } },
      h('div', { class: 'stat-label' }, label),
      h('div', { class: 'stat-value' }, value))));
}

/** A message about a failed request, in place of the content. */
export function failure(error) {
  return h('div', { class: 'notice notice-error', role: 'alert' }, h('strong', null, 'Request failed: '), error.message || String(error));
}

/** Asks the operator to confirm an action in the page's dialog; resolves true on OK. */
export function confirmAction(title, text, okLabel = 'OK') {
  const dialog = document.getElementById('confirm');
  replace(document.getElementById('confirm-title'), title);
  replace(document.getElementById('confirm-text'), text);
  replace(document.getElementById('confirm-ok'), okLabel);
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/** A short-lived message at the bottom of the screen. */
export function toast(text, tone = 'ok') {
  const node = h('div', { class: `toast toast-${tone}`, role: 'status' }, text);
  document.body.append(node);
  setTimeout(() => node.remove(), 4000);
}

/** A form whose submit calls `action(FormData)` (which resolves to the text
 * to show), with its result below it, in a panel. */
export function actionForm(name, title, fields, button, action) {
  const result = h('div', { class: 'declare-result', 'aria-live': 'polite' });
  const node = h('form', { class: 'inline-form', dataset: { form: name } }, fields, h('button', { class: 'button primary', type: 'submit' }, button));
  node.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const text = await action(new FormData(node));
      replace(result, h('div', { class: 'notice notice-ok', dataset: { done: name } }, text));
      toast(text);
    } catch (error) {
      replace(result, failure(error));
    }
  });
  return panel(title, node, result);
}

/** A labelled input. */
export const field = (label, attrs) => h('label', null, label, ' ', h('input', attrs));

/** A labelled select of `options`. */
export const choice = (label, name, options) => h('label', null, label, ' ', h('select', { name }, options.map((value) => h('option', { value }, value))));
