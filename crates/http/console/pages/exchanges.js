// Exchanges and their bindings to queues, exchanges and Kafka topics.

import { api } from '../api.js';
import { h, header, link, panel, replace, table, failure, badge } from '../dom.js';
import * as format from '../format.js';

const DEFAULT_NAME = '(default)';

function destination(binding) {
  const route = { queue: 'queues', topic: 'topics' }[binding.destination_kind];
  return [badge(binding.destination_kind, binding.destination_kind === 'topic' ? 'info' : 'neutral'), ' ',
    route ? link(binding.destination, route, binding.destination) : h('code', null, binding.destination)];
}

export function exchanges(view) {
  let selected = null;
  const refresh = async () => {
    try {
      const [list, bindings] = await Promise.all([api('/exchanges'), api('/bindings')]);
      const shown = selected === null ? bindings : bindings.filter((b) => b.source === selected);
      const pick = (name) => { selected = selected === name ? null : name; refresh(); };
      replace(view,
        header('Exchanges', { sub: `${format.count(list.length)} exchanges · ${format.count(bindings.length)} bindings` }),
        panel(null, table([
          { label: 'Name', cell: (e) => h('span', { class: selected === e.name ? 'selected' : null }, e.name === '' ? h('span', { class: 'muted' }, DEFAULT_NAME) : e.name) },
          { label: 'Type', cell: (e) => badge(e.kind, 'info') },
          { label: '', cell: (e) => [e.durable ? badge('durable') : badge('transient', 'warn'), e.internal ? [' ', badge('internal')] : null, e.auto_delete ? [' ', badge('auto-delete')] : null] },
          { label: 'Alternate exchange', cell: (e) => e.alternate_exchange || h('span', { class: 'muted' }, '—') },
          { label: 'Bindings', num: true, cell: (e) => format.count(e.bindings) },
        ], list, { name: 'exchanges', key: (e) => e.name, onRow: (e) => pick(e.name) })),
        h('section', { class: 'panel' },
          h('div', { class: 'panel-head' },
            h('h2', null, selected === null ? 'Bindings' : `Bindings from ${selected || DEFAULT_NAME}`),
            selected === null ? h('span', { class: 'muted' }, 'Click an exchange to show only its bindings.') : h('button', { class: 'button', type: 'button', onclick: () => pick(selected) }, 'Show all')),
          table([
            { label: 'Source', cell: (b) => b.source || h('span', { class: 'muted' }, DEFAULT_NAME) },
            { label: 'Destination', cell: destination },
            { label: 'Binding key', cell: (b) => h('code', null, b.binding_key) },
            { label: 'Arguments', cell: (b) => (Object.keys(b.arguments).length ? h('code', null, JSON.stringify(b.arguments)) : h('span', { class: 'muted' }, '—')) },
          ], shown, { name: 'bindings', empty: 'No bindings.' })));
    } catch (error) {
      replace(view, header('Exchanges'), failure(error));
    }
  };
  return { refresh };
}
