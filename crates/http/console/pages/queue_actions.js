// One queue's publish and get forms, as RabbitMQ's management UI has them:
// publish a message straight to the queue, and take messages with an ack
// mode (give back, ack, reject with or without requeue). Knows the admin
// API's publish and get; the queue page places the panels.

import { api, seg } from '../api.js';
import { h, replace, actionForm, field, choice } from '../dom.js';
import * as format from '../format.js';
import { inVhost } from '../vhost.js';
import { messageTable } from './messages.js';

const ACK_MODES = ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'];

/** "Publish a message" for queue `name` of `vhost`; `done` after each. */
export function publishPanel(name, vhost, done) {
  return actionForm('publish-queue', 'Publish a message', [
    field('Payload', { name: 'value', required: true }),
    field('Headers', { name: 'headers', placeholder: 'name=value, name=value' }),
  ], 'Publish', async (data) => {
    const headers = {};
    for (const pair of String(data.get('headers')).split(',').map((text) => text.trim()).filter(Boolean)) {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`a header is name=value, not ${JSON.stringify(pair)}`);
      headers[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
    }
    await api(inVhost(`/queues/${seg(name)}/messages`, vhost), { method: 'POST', body: { value: data.get('value'), headers } });
    done();
    return `Published to ${name} in vhost ${vhost}.`;
  });
}

/** "Get messages" from queue `name` of `vhost`: what was taken shows below. */
export function getPanel(name, vhost, done) {
  const got = h('div', { class: 'got-messages' });
  const panel = actionForm('get-queue', 'Get messages', [
    choice('Ack mode', 'ackmode', ACK_MODES),
    field('Messages', { name: 'count', type: 'number', min: 1, max: 1000, value: 1 }),
  ], 'Get', async (data) => {
    const body = { ackmode: data.get('ackmode'), count: Number(data.get('count')) || 1 };
    const result = await api(inVhost(`/queues/${seg(name)}/get`, vhost), { method: 'POST', body });
    replace(got, messageTable(result.messages, { kind: 'queue' }));
    done();
    const n = result.messages.length;
    return n ? `Got ${format.count(n)} message${n === 1 ? '' : 's'} (${body.ackmode}).` : `${name} has no message ready.`;
  });
  panel.append(got);
  return panel;
}
