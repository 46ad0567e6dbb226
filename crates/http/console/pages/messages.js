// A table of peeked messages (topic partition or queue) whose rows expand
// to show the whole value and every header.

import { h, table, badge } from '../dom.js';
import * as format from '../format.js';

const PREVIEW_CHARS = 80;
const DEATH_REASON = 'conveyor.death-reason';
const DEATH_QUEUE = 'conveyor.death-queue';

/** Control characters as \xNN escapes, so binary-ish text stays readable. */
function visible(value) {
  return value.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function text(value, encoding) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, 'null');
  if (value === '') return h('span', { class: 'muted' }, '(empty)');
  return encoding === 'base64' ? [badge('base64'), ' ', value] : visible(value);
}

function preview(value, encoding) {
  if (value === null || value === undefined) return h('span', { class: 'muted' }, 'null');
  const short = visible(value.length > PREVIEW_CHARS ? value.slice(0, PREVIEW_CHARS) + '…' : value);
  return h('code', { class: 'preview' }, encoding === 'base64' ? `base64:${short}` : short);
}

function header(message, key) {
  const found = message.headers.find((entry) => entry.key === key);
  return found ? found.value : null;
}

function inspect(message) {
  return h('div', { class: 'inspect', dataset: { inspect: message.offset } },
    h('div', { class: 'inspect-title' }, 'Value'),
    h('pre', null, text(message.value, message.value_encoding)),
    h('div', { class: 'inspect-title' }, 'Headers'),
    message.headers.length
      ? h('table', { class: 'kv' }, h('tbody', null, message.headers.map((entry) =>
        h('tr', null, h('th', null, entry.key), h('td', null, h('code', null, text(entry.value, entry.value_encoding)))))))
      : h('p', { class: 'muted' }, 'No headers.'));
}

/** `kind`: 'topic' (keys) or 'queue' (routing keys, deliveries, dead-letter reasons). */
export function messageTable(messages, { kind }) {
  const columns = [
    { label: 'Offset', num: true, cell: (m) => format.count(m.offset) },
    { label: 'Time', cell: (m) => h('span', { title: m.timestamp_ms === null ? null : new Date(m.timestamp_ms).toISOString() }, format.time(m.timestamp_ms)), class: 'nowrap' },
    { label: kind === 'queue' ? 'Routing key' : 'Key', cell: (m) => preview(m.key, m.key_encoding) },
    { label: 'Value', cell: (m) => preview(m.value, m.value_encoding), class: 'wide' },
  ];
  if (kind === 'queue') {
    columns.push(
      { label: 'Deliveries', num: true, cell: (m) => format.count(m.delivery_count) },
      { label: 'Dead-lettered', cell: (m) => {
        const reason = header(m, DEATH_REASON);
        return reason ? [badge(reason, 'warn'), ' from ', h('code', null, header(m, DEATH_QUEUE) || '?')] : h('span', { class: 'muted' }, '—');
      } },
      { label: 'State', cell: (m) => (m.acquired ? badge('unacked', 'info') : badge('ready', 'ok')) },
    );
  }
  const node = table(columns, messages, {
    name: 'messages',
    key: (m) => m.offset,
    empty: 'No messages.',
    onRow: (message) => {
      const row = node.querySelector(`tr[data-name="${message.offset}"]`);
      const open = row.nextElementSibling && row.nextElementSibling.classList.contains('inspect-row');
      if (open) {
        row.nextElementSibling.remove();
        row.classList.remove('open');
      } else {
        row.after(h('tr', { class: 'inspect-row' }, h('td', { colspan: columns.length }, inspect(message))));
        row.classList.add('open');
      }
    },
  });
  return node;
}
