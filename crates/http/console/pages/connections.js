// Open client connections (Kafka and AMQP), with a button to close one.
// Brokers without GET /api/v1/connections get a quiet "not available".

import { api } from '../api.js';
import { h, header, panel, replace, table, failure, badge, confirmAction, toast } from '../dom.js';
import * as format from '../format.js';

export function connections(view) {
  const refresh = async () => {
    let list;
    try {
      list = await api('/connections');
    } catch (error) {
      if (error.status === 404) {
        replace(view, header('Connections'),
          h('div', { class: 'notice', dataset: { unavailable: 'connections' } }, 'Listing connections is not available on this broker yet. The overview counts open connections per protocol.'));
      } else {
        replace(view, header('Connections'), failure(error));
      }
      return;
    }
    const close = async (connection) => {
      if (!(await confirmAction(`Close connection ${connection.id}?`, `Close the ${connection.protocol} connection from ${connection.address} (${connection.client || 'unnamed client'}). The client sees its connection dropped.`, 'Close connection'))) return;
      try {
        await api(`/connections/${connection.id}`, { method: 'DELETE' });
        toast(`Closed connection ${connection.id}.`);
      } catch (error) {
        toast(error.message, 'error');
      }
      await refresh();
    };
    const now = Date.now();
    replace(view,
      header('Connections', { sub: `${format.count(list.length)} open` }),
      panel(null, table([
        { label: 'ID', num: true, cell: (c) => String(c.id) },
        { label: 'Protocol', cell: (c) => badge(c.protocol.toUpperCase(), c.protocol === 'kafka' ? 'info' : 'ok') },
        { label: 'Address', cell: (c) => h('code', null, c.address) },
        { label: 'Client', cell: (c) => c.client || h('span', { class: 'muted' }, '—') },
        { label: 'User', cell: (c) => c.user ?? h('span', { class: 'muted' }, '—') },
        { label: 'Connected for', num: true, cell: (c) => format.duration(Math.max(0, now - c.connected_at_ms)) },
        { label: 'Channels', num: true, cell: (c) => format.count(c.channels) },
        { label: '', cell: (c) => h('button', { class: 'button small danger', type: 'button', onclick: () => close(c) }, 'Close') },
      ], list, { name: 'connections', key: (c) => c.id, empty: 'No client is connected.' })));
  };
  return { refresh };
}
