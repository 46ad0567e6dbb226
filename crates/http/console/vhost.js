// The AMQP virtual host the console shows: picked on the queue and exchange
// pages, carried in links (#/queues/jobs?vhost=staging) so a queue of one
// vhost never opens the queue of the same name in another, and remembered
// for the next visit. Knows the API's `?vhost=` and nothing else.

import { api } from './api.js';
import { h, replace } from './dom.js';

const KEY = 'conveyor:vhost';
let chosen = null;

/** The vhost shown: the link's, else the last one picked, else `/`. */
export function current() {
  const query = new URLSearchParams(location.hash.split('?')[1] || '');
  return query.get('vhost') || chosen || localStorage.getItem(KEY) || '/';
}

/** Shows `name` from now on. */
export function choose(name) {
  chosen = name;
  localStorage.setItem(KEY, name);
}

/** An API path in the vhost shown (or `vhost`). */
export function inVhost(path, vhost = current()) {
  return `${path}${path.includes('?') ? '&' : '?'}vhost=${encodeURIComponent(vhost)}`;
}

/** A link to a console route in `vhost`; `parts` are URI-encoded. */
export function vlink(text, vhost, ...parts) {
  return h('a', { href: `#/${parts.map(encodeURIComponent).join('/')}?vhost=${encodeURIComponent(vhost)}` }, text);
}

/** A vhost picker: a select of every vhost; `onChange` after a pick. */
export function picker(onChange) {
  const select = h('select', { 'aria-label': 'Virtual host', name: 'vhost', class: 'vhost-picker' });
  const shown = current();
  replace(select, h('option', { value: shown, selected: true }, shown));
  api('/vhosts').then((vhosts) => {
    replace(select, vhosts.map((vhost) => h('option', { value: vhost.name, selected: vhost.name === shown }, vhost.name)));
  }).catch(() => null);
  select.addEventListener('change', () => {
    choose(select.value);
    const [route] = location.hash.split('?');
    history.replaceState(null, '', `${route}?vhost=${encodeURIComponent(select.value)}`);
    onChange();
  });
  return h('label', { class: 'vhost-label' }, 'Vhost ', select);
}
