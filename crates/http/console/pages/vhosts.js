// AMQP virtual hosts: the list with what each holds, and forms to create
// and delete one. Knows the admin API's /vhosts; what is in a vhost is
// shown by the queue and exchange pages (vhost.js picks it).

import { api, seg } from '../api.js';
import { h, header, panel, replace, table, failure, confirmAction, toast, actionForm, field } from '../dom.js';
import * as format from '../format.js';
import { choose, vlink } from '../vhost.js';

export function vhosts(view) {
  const listing = h('div');
  const create = actionForm('create-vhost', 'Create a vhost', [
    field('Name', { name: 'name', required: true, maxlength: 255 }),
  ], 'Create vhost', async (data) => {
    const name = data.get('name');
    const created = await api(`/vhosts/${seg(name)}`, { method: 'PUT' });
    refresh();
    return created ? `Created vhost ${name}.` : `Vhost ${name} exists.`;
  });

  const remove = async (vhost) => {
    if (!(await confirmAction(`Delete vhost ${vhost.name}?`, `Delete vhost ${vhost.name} with its ${format.count(vhost.queues)} queues, their messages and its ${format.count(vhost.exchanges)} exchanges. This cannot be undone.`, 'Delete'))) return;
    try {
      await api(`/vhosts/${seg(vhost.name)}`, { method: 'DELETE' });
      toast(`Deleted vhost ${vhost.name}.`);
    } catch (error) {
      toast(error.message, 'error');
    }
    refresh();
  };

  let first = true;
  const refresh = async () => {
    let list;
    try {
      list = await api('/vhosts');
    } catch (error) {
      replace(view, header('Vhosts'), failure(error));
      first = true;
      return;
    }
    replace(listing, panel(null, table([
      { label: 'Name', cell: (v) => vlink(v.name, v.name, 'queues') },
      { label: 'Queues', num: true, cell: (v) => vlink(format.count(v.queues), v.name, 'queues') },
      { label: 'Exchanges', num: true, cell: (v) => vlink(format.count(v.exchanges), v.name, 'exchanges') },
      { label: '', cell: (v) => (v.name === '/' ? null : h('button', { class: 'button danger', type: 'button', dataset: { action: 'delete-vhost' }, onclick: () => remove(v) }, 'Delete')) },
    ], list, { name: 'vhosts', key: (v) => v.name })));
    if (first) {
      first = false;
      replace(view, header('Vhosts', { sub: 'AMQP virtual hosts: separate namespaces of queues, exchanges and bindings' }), listing, create);
    }
  };
  // A vhost's link opens its queues: that vhost is the one shown from then on.
  listing.addEventListener('click', (event) => {
    const target = event.target.closest('a');
    if (target) choose(new URLSearchParams(target.hash.split('?')[1]).get('vhost'));
  });
  return { refresh };
}
