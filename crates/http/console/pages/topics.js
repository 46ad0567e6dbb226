// Kafka topics: the list, and one topic's partitions (start and end offsets,
// sizes), configs and its latest messages.

import { api, seg } from '../api.js';
import { h, header, link, panel, replace, table, failure, badge } from '../dom.js';
import * as format from '../format.js';
import { messageTable } from './messages.js';

export function topics(view) {
  const refresh = async () => {
    try {
      const list = await api('/topics');
      replace(view,
        header('Topics', { sub: `${format.count(list.length)} Kafka topics` }),
        panel(null, table([
          { label: 'Name', cell: (t) => link(t.name, 'topics', t.name) },
          { label: 'Partitions', num: true, cell: (t) => format.count(t.partitions) },
          { label: 'Messages', num: true, cell: (t) => format.count(t.messages) },
          { label: 'Size', num: true, cell: (t) => format.bytes(t.size_bytes) },
        ], list, { name: 'topics', key: (t) => t.name, empty: 'No topics yet: create one with a Kafka client or POST /api/v1/topics.' })));
    } catch (error) {
      replace(view, header('Topics'), failure(error));
    }
  };
  return { refresh };
}

const PEEK_COUNT = 20;

export function topic(view, [name]) {
  let partition = 0;
  const messages = h('div');
  const peek = async (detail) => {
    const info = detail.partitions.find((p) => p.partition === partition) || detail.partitions[0];
    if (!info) return;
    const offset = Math.max(info.log_start_offset, info.end_offset - PEEK_COUNT);
    try {
      const peeked = await api(`/topics/${seg(name)}/partitions/${info.partition}/messages?offset=${offset}&count=${PEEK_COUNT}`);
      // Newest first: the end of the log is what an operator looks for.
      replace(messages, messageTable(peeked.messages.slice().reverse(), { kind: 'topic' }));
    } catch (error) {
      replace(messages, failure(error));
    }
  };
  const refresh = async () => {
    let detail;
    try {
      detail = await api(`/topics/${seg(name)}`);
    } catch (error) {
      replace(view, header(name, { crumbs: [link('Topics', 'topics')] }), failure(error));
      return;
    }
    const total = detail.partitions.reduce((sum, p) => sum + (p.end_offset - p.log_start_offset), 0);
    const size = detail.partitions.reduce((sum, p) => sum + p.size_bytes, 0);
    const select = h('select', { 'aria-label': 'Partition', onchange: (event) => { partition = Number(event.target.value); peek(detail); } },
      detail.partitions.map((p) => h('option', { value: p.partition, selected: p.partition === partition }, `Partition ${p.partition}`)));
    replace(view,
      header(name, {
        crumbs: [link('Topics', 'topics')],
        sub: `${format.count(detail.partitions.length)} partitions · ${format.count(total)} messages · ${format.bytes(size)} · id ${detail.id}`,
        actions: [h('button', { class: 'button', type: 'button', onclick: refresh }, 'Refresh')],
      }),
      panel('Partitions', table([
        { label: 'Partition', num: true, cell: (p) => String(p.partition) },
        { label: 'Start offset', num: true, cell: (p) => format.count(p.log_start_offset) },
        { label: 'End offset', num: true, cell: (p) => format.count(p.end_offset) },
        { label: 'Messages', num: true, cell: (p) => format.count(p.end_offset - p.log_start_offset) },
        { label: 'Size', num: true, cell: (p) => format.bytes(p.size_bytes) },
      ], detail.partitions, { name: 'partitions', key: (p) => p.partition })),
      h('section', { class: 'panel' },
        h('div', { class: 'panel-head' }, h('h2', null, `Latest messages`), select),
        messages),
      panel('Configs', table([
        { label: 'Name', cell: (c) => h('code', null, c.name) },
        { label: 'Value', cell: (c) => h('code', null, c.value) },
        { label: '', cell: (c) => (c.is_default ? badge('default') : badge('set on topic', 'info')) },
      ], detail.configs.slice().sort((a, b) => Number(a.is_default) - Number(b.is_default) || a.name.localeCompare(b.name)), { name: 'configs' })));
    await peek(detail);
  };
  // Not refreshed on a timer: that would reset the partition picked and close opened messages.
  return { refresh, manual: true };
}
