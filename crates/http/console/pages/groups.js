// Kafka consumer groups: the list with their lag, and one group's members,
// assignments and committed offsets with lag per partition.

import { api, seg } from '../api.js';
import { h, header, link, panel, replace, table, failure, badge, stats } from '../dom.js';
import * as format from '../format.js';

function state(value) {
  const tone = { Stable: 'ok', Empty: 'neutral', Dead: 'error' }[value] || 'warn';
  return badge(value, tone);
}

function lag(value) {
  return h('span', { class: value > 0 ? 'lag' : null }, format.count(value));
}

export function groups(view) {
  const refresh = async () => {
    try {
      const list = await api('/groups');
      replace(view,
        header('Consumer groups', { sub: `${format.count(list.length)} Kafka consumer groups` }),
        panel(null, table([
          { label: 'Group', cell: (g) => link(g.group_id, 'groups', g.group_id) },
          { label: 'State', cell: (g) => state(g.state) },
          { label: 'Protocol', cell: (g) => g.protocol_type || '—' },
          { label: 'Members', num: true, cell: (g) => format.count(g.members) },
          { label: 'Lag', num: true, cell: (g) => lag(g.lag) },
        ], list, { name: 'groups', key: (g) => g.group_id, empty: 'No consumer groups yet.' })));
    } catch (error) {
      replace(view, header('Consumer groups'), failure(error));
    }
  };
  return { refresh };
}

export function group(view, [id]) {
  const refresh = async () => {
    try {
      const g = await api(`/groups/${seg(id)}`);
      replace(view,
        header(g.group_id, { crumbs: [link('Consumer groups', 'groups')], sub: `protocol ${g.protocol_type || '—'} · assignor ${g.protocol || '—'}` }),
        stats([
          ['State', state(g.state)],
          ['Members', format.count(g.members.length)],
          ['Generation', String(g.generation_id)],
          ['Total lag', format.count(g.lag), g.lag > 0 ? 'warn' : null],
        ]),
        panel('Members', table([
          { label: 'Member', cell: (m) => h('code', null, m.member_id) },
          { label: 'Client', cell: (m) => m.client_id },
          { label: 'Host', cell: (m) => m.client_host },
          { label: 'Assigned partitions', cell: (m) => m.assignments.map((a) => `${a.topic} [${a.partitions.join(', ')}]`).join('; ') || '—' },
        ], g.members, { name: 'members', empty: 'No members: nobody consumes with this group right now.' })),
        panel('Committed offsets and lag', table([
          { label: 'Topic', cell: (o) => link(o.topic, 'topics', o.topic) },
          { label: 'Partition', num: true, cell: (o) => String(o.partition) },
          { label: 'Committed', num: true, cell: (o) => format.count(o.committed_offset) },
          { label: 'End offset', num: true, cell: (o) => format.count(o.end_offset) },
          { label: 'Lag', num: true, cell: (o) => lag(o.lag) },
        ], g.offsets, { name: 'offsets', empty: 'No committed offsets.' })));
    } catch (error) {
      replace(view, header(id, { crumbs: [link('Consumer groups', 'groups')] }), failure(error));
    }
  };
  return { refresh };
}
