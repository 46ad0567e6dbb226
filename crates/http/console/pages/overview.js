// The broker at a glance: key counts, live message rates and bytes on disk,
// traffic totals.

import { h, header, panel, replace, stats, failure } from '../dom.js';
import { lineChart } from '../chart.js';
import * as format from '../format.js';
import { live, subscribe, WINDOW_MS } from '../live.js';

const RATE_SERIES = [
  { key: 'in', label: 'Messages in', color: '#2563eb' },
  { key: 'out', label: 'Messages out', color: '#16a34a' },
];
const PROTOCOLS = { kafka: 'Kafka', amqp: 'AMQP' };
const DISK_SERIES = [{ key: 'disk', label: 'Bytes on disk', color: '#9333ea' }];

function legend(series, latest, unit) {
  return h('div', { class: 'legend' }, series.map(({ key, label, color }) =>
    h('span', { class: 'legend-item' },
      h('span', { class: 'swatch', style: { background: color } }),
      label, ' ',
      h('strong', { dataset: { legend: key } }, unit(latest ? latest.values[key] : null)))));
}

function total(label, value) {
  return h('tr', null, h('th', null, label), h('td', { class: 'num' }, value));
}

export function overview(view) {
  const render = () => {
    const o = live.overview;
    if (!o) {
      replace(view, header('Overview'), live.error ? failure(live.error) : h('p', { class: 'muted' }, 'Loading…'));
      return;
    }
    const connections = Object.values(o.connections).reduce((sum, open) => sum + open, 0);
    const now = Date.now();
    const lastRate = live.rates[live.rates.length - 1];
    const lastDisk = live.disk[live.disk.length - 1];
    replace(view,
      header('Overview', { sub: `Conveyor ${o.version} · cluster ${o.cluster_id} · up ${format.duration(o.uptime_ms)}` }),
      live.error ? failure(live.error) : null,
      stats([
        ['Topics', format.count(o.topics)],
        ['Partitions', format.count(o.partitions)],
        ['Consumer groups', format.count(o.groups)],
        ['Queues', format.count(o.queues)],
        ['Exchanges', format.count(o.exchanges)],
        ['Connections', format.count(connections)],
      ]),
      h('div', { class: 'columns' },
        panel('Message rate',
          legend(RATE_SERIES, lastRate, (v) => format.rate(v)),
          lineChart({ name: 'rates', series: RATE_SERIES, samples: live.rates, windowMs: WINDOW_MS, now, format: (v) => format.rate(v, '/s') })),
        panel('Bytes on disk',
          legend(DISK_SERIES, lastDisk, (v) => format.bytes(v)),
          lineChart({ name: 'disk', series: DISK_SERIES, samples: live.disk, windowMs: WINDOW_MS, now, format: (v) => format.bytes(v), ceil: format.bytesCeil }))),
      h('div', { class: 'columns' },
        panel('Traffic since start',
          h('table', { class: 'kv' }, h('tbody', null,
            total('Messages in', format.count(o.messages_in_total)),
            total('Messages out', format.count(o.messages_out_total)),
            total('Bytes in', format.bytes(o.bytes_in_total)),
            total('Bytes out', format.bytes(o.bytes_out_total)),
            total('Throughput in', format.rate(lastRate ? lastRate.values.bytes_in / 1024 : null, 'KiB/s')),
            total('Throughput out', format.rate(lastRate ? lastRate.values.bytes_out / 1024 : null, 'KiB/s'))))),
        panel('Queued messages and connections',
          h('table', { class: 'kv' }, h('tbody', null,
            total('Ready', format.count(o.messages_ready)),
            total('Unacknowledged', format.count(o.messages_unacked)),
            Object.entries(o.connections).map(([protocol, open]) => total(`${PROTOCOLS[protocol] || protocol} connections`, format.count(open))))))));
  };
  render();
  return { dispose: subscribe(render) };
}
