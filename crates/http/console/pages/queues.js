// Queues (AMQP and SQS) of the vhost picked: the list with depths and a
// declare form (dead-letter exchange, TTL, max-length, priority, type), and
// one queue's counts, definition, dead-letter wiring and messages, with
// publish and get forms, purge and, for a dead-letter queue, inspect and
// redrive.

import { api, seg } from '../api.js';
import { h, header, panel, replace, table, failure, badge, stats, confirmAction, toast } from '../dom.js';
import * as format from '../format.js';
import { current as shownVhost, inVhost, picker, vlink } from '../vhost.js';
import { messageTable } from './messages.js';
import { publishPanel, getPanel } from './queue_actions.js';

const PEEK_COUNT = 50;
const REDRIVE_DEFAULT = 100;

export function queues(view) {
  const form = declareForm(() => refresh());
  const listing = h('div');
  let first = true;
  const refresh = async () => {
    const vhost = shownVhost();
    try {
      const list = await api(inVhost('/queues', vhost));
      const ready = list.reduce((sum, q) => sum + q.messages_ready, 0);
      const heading = header('Queues', { sub: `${format.count(list.length)} queues in vhost ${vhost} · ${format.count(ready)} messages ready`, actions: [picker(() => { first = true; refresh(); })] });
      replace(listing, panel(null, table([
        { label: 'Name', cell: (q) => vlink(q.name, q.vhost, 'queues', q.name) },
        { label: '', cell: (q) => [q.durable ? badge('durable') : badge('transient', 'warn'), q.auto_delete ? [' ', badge('auto-delete')] : null] },
        { label: 'Ready', num: true, cell: (q) => format.count(q.messages_ready) },
        { label: 'Unacked', num: true, cell: (q) => format.count(q.messages_unacked) },
        { label: 'Consumers', num: true, cell: (q) => format.count(q.consumers) },
        { label: 'Size', num: true, cell: (q) => format.bytes(q.size_bytes) },
        { label: 'Dead letters to', cell: (q) => (q.dead_letter_exchange === null ? h('span', { class: 'muted' }, '—') : h('code', null, q.dead_letter_exchange || '(default exchange)')) },
      ], list, { name: 'queues', key: (q) => q.name, empty: 'No queues in this vhost yet: declare one below, over AMQP, or over SQS.' })));
      // The form keeps what is being typed: only the first render (or a vhost change) places it.
      if (first) replace(view, heading, listing, form);
      else view.replaceChild(heading, view.firstChild);
      first = false;
    } catch (error) {
      replace(view, header('Queues'), failure(error));
      first = true;
    }
  };
  return { refresh };
}

/** The declare form: a queue of the vhost shown, with its common x-… arguments. */
function declareForm(done) {
  const field = (label, attrs) => h('label', null, label, ' ', h('input', attrs));
  const result = h('div', { class: 'declare-result', 'aria-live': 'polite' });
  const type = h('select', { name: 'x-queue-type', 'aria-label': 'Queue type' },
    ['classic', 'quorum', 'stream'].map((kind) => h('option', { value: kind }, kind)));
  const form = h('form', { class: 'inline-form', dataset: { form: 'declare-queue' } },
    field('Name', { name: 'name', required: true, maxlength: 255 }),
    h('label', null, h('input', { type: 'checkbox', name: 'durable', checked: true }), ' Durable'),
    field('Dead-letter exchange', { name: 'x-dead-letter-exchange' }),
    field('Dead-letter routing key', { name: 'x-dead-letter-routing-key' }),
    field('Message TTL (ms)', { name: 'x-message-ttl', type: 'number', min: 0 }),
    field('Max length', { name: 'x-max-length', type: 'number', min: 0 }),
    field('Max priority', { name: 'x-max-priority', type: 'number', min: 1 }),
    h('label', null, 'Type ', type),
    h('button', { class: 'button primary', type: 'submit' }, 'Declare queue'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const name = data.get('name');
    const args = {};
    for (const key of ['x-dead-letter-exchange', 'x-dead-letter-routing-key']) if (data.get(key)) args[key] = data.get(key);
    // Numbers go as JSON numbers: AMQP integers, as a client would send them.
    for (const key of ['x-message-ttl', 'x-max-length', 'x-max-priority']) if (data.get(key) !== '') args[key] = Number(data.get(key));
    if (data.get('x-queue-type') !== 'classic') args['x-queue-type'] = data.get('x-queue-type');
    const vhost = shownVhost();
    try {
      const declared = await api(inVhost(`/queues/${seg(name)}`, vhost), { method: 'PUT', body: { durable: data.get('durable') === 'on', arguments: args } });
      const text = declared ? `Declared queue ${name} in vhost ${vhost}.` : `Queue ${name} exists in vhost ${vhost}, declared the same way.`;
      replace(result, h('div', { class: 'notice notice-ok', dataset: { declared: name } }, text));
      toast(text);
      done();
    } catch (error) {
      replace(result, failure(error));
    }
  });
  return panel('Declare a queue', form, result);
}

function definition(q) {
  const rows = [
    ['Durable', q.durable ? 'yes' : 'no'],
    ['Auto-delete', q.auto_delete ? 'yes' : 'no'],
    ['Created', format.time(q.created_ms)],
    ['Message TTL', q.message_ttl_ms === null ? '—' : `${format.count(q.message_ttl_ms)} ms`],
    ['Max length', format.count(q.max_length)],
    ['Delivery limit', format.count(q.delivery_limit)],
    ['Dead-letter exchange', q.dead_letter_exchange === null ? '—' : q.dead_letter_exchange || '(default exchange)'],
    ['Dead-letter routing key', q.dead_letter_routing_key ?? '—'],
    ['Dead letters reach', q.dead_letter_queues.length ? q.dead_letter_queues.map((name, i) => [i ? ', ' : '', vlink(name, q.vhost, 'queues', name)]) : '—'],
    ['Settled below offset', format.count(q.settled_below)],
    ['End offset', format.count(q.end_offset)],
  ];
  for (const [name, value] of Object.entries(q.arguments)) rows.push([h('code', null, name), h('code', null, value)]);
  return h('dl', { class: 'facts' }, rows.map(([label, value]) => h('div', null, h('dt', null, label), h('dd', null, value))));
}

export function queue(view, [name]) {
  const vhost = shownVhost();
  const crumbs = [vlink('Queues', vhost, 'queues'), h('span', { class: 'muted' }, `vhost ${vhost}`)];
  const summary = h('div');
  const wiring = h('div');
  const messages = h('div', { class: 'messages' }, h('p', { class: 'muted' }, 'Loading…'));
  const redriveResult = h('div', { class: 'redrive-result', 'aria-live': 'polite' });
  const destination = h('select', { 'aria-label': 'Redrive destination', name: 'destination' });
  const maxMessages = h('input', { type: 'number', min: 1, max: 10000, value: REDRIVE_DEFAULT, 'aria-label': 'Most messages to move', name: 'max_messages' });
  const redriveButton = h('button', { class: 'button primary', type: 'submit' }, 'Redrive');
  const purgeButton = h('button', { class: 'button danger', type: 'button' }, 'Purge');
  const deleteButton = h('button', { class: 'button danger', type: 'button', dataset: { action: 'delete-queue' } }, 'Delete');
  const redrivePanel = h('section', { class: 'panel' });
  let current = null;

  const loadMessages = async () => {
    try {
      const peeked = await api(inVhost(`/queues/${seg(name)}/messages?count=${PEEK_COUNT}`, vhost));
      replace(messages, messageTable(peeked.messages, { kind: 'queue' }),
        peeked.messages.length === PEEK_COUNT ? h('p', { class: 'muted' }, `The first ${PEEK_COUNT} unsettled messages.`) : null);
    } catch (error) {
      replace(messages, failure(error));
    }
  };

  const refresh = async () => {
    let q;
    try {
      q = await api(inVhost(`/queues/${seg(name)}`, vhost));
    } catch (error) {
      replace(view, header(name, { crumbs }), failure(error));
      current = null;
      return;
    }
    const first = current === null;
    current = q;
    const isDlq = q.dead_letter_sources.length > 0;
    replace(summary, stats([
      ['Ready', format.count(q.messages_ready)],
      ['Unacked', format.count(q.messages_unacked), q.messages_unacked > 0 ? 'info' : null],
      ['Consumers', format.count(q.consumers)],
      ['Size', format.bytes(q.size_bytes)],
    ]));
    replace(wiring, definition(q));
    replace(redrivePanel,
      h('h2', null, isDlq ? 'Dead-letter queue' : 'Move messages'),
      isDlq
        ? h('p', null, 'Dead letters from ', q.dead_letter_sources.map((source, i) => [i ? ', ' : '', vlink(source, vhost, 'queues', source)]),
          ' arrive here. Inspect them below, then redrive them: each goes back to the queue it was dead-lettered from, or to the queue you pick.')
        : h('p', { class: 'muted' }, 'Redrive moves messages to another queue; dead-lettered ones can go back to the queue they came from.'),
      h('form', { class: 'inline-form', dataset: { form: 'redrive' }, onsubmit: redrive },
        h('label', null, 'To ', destination),
        h('label', null, 'At most ', maxMessages),
        redriveButton),
      redriveResult);
    if (first) {
      replace(view,
        header(name, { crumbs, sub: isDlq ? 'dead-letter queue' : null, actions: [purgeButton, ' ', deleteButton] }),
        summary,
        redrivePanel,
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' }, h('h2', null, 'Messages'),
            h('button', { class: 'button', type: 'button', onclick: loadMessages }, 'Refresh')),
          messages),
        h('div', { class: 'columns' }, publishPanel(name, vhost, refresh), getPanel(name, vhost, () => { refresh(); loadMessages(); })),
        panel('Definition', wiring));
      const all = await api(inVhost('/queues', vhost)).catch(() => []);
      replace(destination,
        h('option', { value: '' }, 'the queue each came from'),
        all.filter((other) => other.name !== name).map((other) => h('option', { value: other.name }, other.name)));
      await loadMessages();
    }
  };

  async function redrive(event) {
    event.preventDefault();
    const target = destination.value;
    const count = Number(maxMessages.value) || REDRIVE_DEFAULT;
    const where = target ? `to ${target}` : 'back to the queues they were dead-lettered from';
    if (!(await confirmAction(`Redrive ${name}?`, `Move up to ${count} messages out of ${name} ${where}.`, 'Redrive'))) return;
    redriveButton.disabled = true;
    try {
      const body = { max_messages: count };
      if (target) body.destination = target;
      const result = await api(inVhost(`/queues/${seg(name)}/redrive`, vhost), { method: 'POST', body });
      const moved = Object.entries(result.destinations).map(([queueName, n]) => `${format.count(n)} to ${queueName}`).join(', ');
      const text = `Moved ${format.count(result.moved)} message${result.moved === 1 ? '' : 's'}${moved ? ` (${moved})` : ''}` +
        (result.skipped ? `; ${format.count(result.skipped)} left here (no known destination or it refused them)` : '') + '.';
      replace(redriveResult, h('div', { class: `notice ${result.skipped ? 'notice-warn' : 'notice-ok'}`, dataset: { moved: result.moved, skipped: result.skipped } }, text));
      toast(text);
    } catch (error) {
      replace(redriveResult, failure(error));
    } finally {
      redriveButton.disabled = false;
    }
    await refresh();
    await loadMessages();
  }

  purgeButton.addEventListener('click', async () => {
    if (!current) return;
    if (!(await confirmAction(`Purge ${name}?`, `Remove the ${format.count(current.messages_ready)} messages waiting in ${name}. Messages held by consumers stay theirs. This cannot be undone.`, 'Purge'))) return;
    try {
      const result = await api(inVhost(`/queues/${seg(name)}/purge`, vhost), { method: 'POST' });
      toast(`Purged ${format.count(result.purged)} messages from ${name}.`);
    } catch (error) {
      toast(error.message, 'error');
    }
    await refresh();
    await loadMessages();
  });

  deleteButton.addEventListener('click', async () => {
    if (!current) return;
    if (!(await confirmAction(`Delete ${name}?`, `Delete queue ${name} of vhost ${vhost} and its ${format.count(current.messages_ready + current.messages_unacked)} messages, as AMQP's queue.delete does. This cannot be undone.`, 'Delete'))) return;
    try {
      const result = await api(inVhost(`/queues/${seg(name)}`, vhost), { method: 'DELETE' });
      toast(`Deleted queue ${name} with ${format.count(result.messages_deleted)} messages.`);
      location.hash = `#/queues?vhost=${encodeURIComponent(vhost)}`;
    } catch (error) {
      toast(error.message, 'error');
    }
  });

  return { refresh };
}
