// Exchanges of the vhost picked and their bindings to queues, exchanges and
// Kafka topics: declare and delete exchanges, add and remove bindings.

import { api, seg } from '../api.js';
import { h, header, link, panel, replace, table, failure, badge, confirmAction, toast, actionForm, field, choice } from '../dom.js';
import * as format from '../format.js';
import { current, inVhost, picker, vlink } from '../vhost.js';

const DEFAULT_NAME = '(default)';
const KINDS = ['direct', 'fanout', 'topic', 'headers'];

function destination(binding) {
  const kind = binding.destination_type;
  const target = kind === 'queue' ? vlink(binding.destination, binding.vhost, 'queues', binding.destination)
    : kind === 'topic' ? link(binding.destination, 'topics', binding.destination) : h('code', null, binding.destination);
  return [badge(kind, kind === 'topic' ? 'info' : 'neutral'), ' ', target];
}

export function exchanges(view) {
  let selected = null;
  let first = true;
  const listing = h('div');
  const declareExchange = actionForm('declare-exchange', 'Declare an exchange', [
    field('Name', { name: 'name', required: true, maxlength: 255 }),
    choice('Type', 'type', KINDS),
    h('label', null, h('input', { type: 'checkbox', name: 'durable', checked: true }), ' Durable'),
    h('label', null, h('input', { type: 'checkbox', name: 'internal' }), ' Internal'),
    field('Alternate exchange', { name: 'alternate-exchange' }),
  ], 'Declare exchange', async (data) => {
    const name = data.get('name');
    const args = data.get('alternate-exchange') ? { 'alternate-exchange': data.get('alternate-exchange') } : {};
    const body = { type: data.get('type'), durable: data.get('durable') === 'on', internal: data.get('internal') === 'on', arguments: args };
    const declared = await api(inVhost(`/exchanges/${seg(name)}`), { method: 'PUT', body });
    refresh();
    return declared ? `Declared ${body.type} exchange ${name} in vhost ${current()}.` : `Exchange ${name} exists, declared the same way.`;
  });
  const addBinding = actionForm('add-binding', 'Add a binding', [
    field('From exchange', { name: 'source', required: true }),
    choice('To', 'destination_type', ['queue', 'exchange', 'topic']),
    field('Destination', { name: 'destination', required: true }),
    field('Routing key', { name: 'routing_key' }),
  ], 'Bind', async (data) => {
    const body = Object.fromEntries(['source', 'destination', 'destination_type', 'routing_key'].map((key) => [key, data.get(key)]));
    const bound = await api(inVhost('/bindings'), { method: 'POST', body });
    refresh();
    return bound ? `Bound ${body.destination_type} ${body.destination} to ${body.source}.` : 'It was bound already.';
  });

  const unbind = async (binding) => {
    const what = `${binding.source || DEFAULT_NAME} → ${binding.destination_type} ${binding.destination} (key ${binding.routing_key || '""'})`;
    if (!(await confirmAction('Remove binding?', `Remove the binding ${what}.`, 'Remove'))) return;
    try {
      const body = { source: binding.source, destination: binding.destination, destination_type: binding.destination_type, routing_key: binding.routing_key, arguments: binding.arguments };
      await api(inVhost('/bindings', binding.vhost), { method: 'DELETE', body });
      toast(`Removed the binding ${what}.`);
    } catch (error) {
      toast(error.message, 'error');
    }
    refresh();
  };

  const remove = async (exchange) => {
    if (!(await confirmAction(`Delete exchange ${exchange.name}?`, `Delete ${exchange.name} and the bindings from and to it.`, 'Delete'))) return;
    try {
      await api(inVhost(`/exchanges/${seg(exchange.name)}`, exchange.vhost), { method: 'DELETE' });
      toast(`Deleted exchange ${exchange.name}.`);
    } catch (error) {
      toast(error.message, 'error');
    }
    refresh();
  };

  const refresh = async () => {
    const vhost = current();
    try {
      const [list, bindings] = await Promise.all([api(inVhost('/exchanges', vhost)), api(inVhost('/bindings', vhost))]);
      const shown = selected === null ? bindings : bindings.filter((b) => b.source === selected);
      const pick = (name) => { selected = selected === name ? null : name; refresh(); };
      const heading = header('Exchanges', { sub: `${format.count(list.length)} exchanges in vhost ${vhost} · ${format.count(bindings.length)} bindings`, actions: [picker(() => { selected = null; first = true; refresh(); })] });
      replace(listing,
        panel(null, table([
          { label: 'Name', cell: (e) => h('span', { class: selected === e.name ? 'selected' : null }, e.name === '' ? h('span', { class: 'muted' }, DEFAULT_NAME) : e.name) },
          { label: 'Type', cell: (e) => badge(e.kind, 'info') },
          { label: '', cell: (e) => [e.durable ? badge('durable') : badge('transient', 'warn'), e.internal ? [' ', badge('internal')] : null, e.auto_delete ? [' ', badge('auto-delete')] : null] },
          { label: 'Alternate exchange', cell: (e) => e.alternate_exchange || h('span', { class: 'muted' }, '—') },
          { label: 'Bindings', num: true, cell: (e) => format.count(e.bindings) },
          { label: '', cell: (e) => (e.name === '' || e.name.startsWith('amq.') ? null : h('button', { class: 'button danger', type: 'button', onclick: () => remove(e) }, 'Delete')) },
        ], list, { name: 'exchanges', key: (e) => e.name, onRow: (e) => pick(e.name) })),
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' },
            h('h2', null, selected === null ? 'Bindings' : `Bindings from ${selected || DEFAULT_NAME}`),
            selected === null ? h('span', { class: 'muted' }, 'Click an exchange to show only its bindings.') : h('button', { class: 'button', type: 'button', onclick: () => pick(selected) }, 'Show all')),
          table([
            { label: 'Source', cell: (b) => b.source || h('span', { class: 'muted' }, DEFAULT_NAME) },
            { label: 'Destination', cell: destination },
            { label: 'Routing key', cell: (b) => h('code', null, b.routing_key) },
            { label: 'Arguments', cell: (b) => (Object.keys(b.arguments).length ? h('code', null, JSON.stringify(b.arguments)) : h('span', { class: 'muted' }, '—')) },
            { label: '', cell: (b) => h('button', { class: 'button', type: 'button', onclick: () => unbind(b) }, 'Remove') },
          ], shown, { name: 'bindings', empty: 'No bindings.' })));
      if (first) replace(view, heading, listing, declareExchange, addBinding);
      else view.replaceChild(heading, view.firstChild);
      first = false;
    } catch (error) {
      replace(view, header('Exchanges'), failure(error));
      first = true;
    }
  };
  return { refresh };
}
