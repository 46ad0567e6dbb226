// The console's shell: hash routes (#/queues/jobs) to pages, a refresh
// timer for the page on screen, and the sidebar's live status.

import { h, replace } from './dom.js';
import * as format from './format.js';
import { live, start, subscribe } from './live.js';
import { overview } from './pages/overview.js';
import { topics, topic } from './pages/topics.js';
import { groups, group } from './pages/groups.js';
import { queues, queue } from './pages/queues.js';
import { exchanges } from './pages/exchanges.js';
import { connections } from './pages/connections.js';
import { vhosts } from './pages/vhosts.js';
import { login } from './pages/login.js';
import { api } from './api.js';

const REFRESH_MS = 5000;

/** [first path segment, page without a name, page for one named resource]. */
const ROUTES = {
  overview: [overview, null],
  topics: [topics, topic],
  groups: [groups, group],
  queues: [queues, queue],
  exchanges: [exchanges, null],
  vhosts: [vhosts, null],
  connections: [connections, null],
  login: [login, null],
};

let page = null;
let timer = null;

function parse() {
  // `?vhost=…` after the route names the vhost (vhost.js), not a segment.
  const parts = location.hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  });
  const [section = 'overview', ...rest] = parts;
  return { section: ROUTES[section] ? section : 'overview', params: rest };
}

async function route() {
  if (page && page.dispose) page.dispose();
  clearTimeout(timer);
  const { section, params } = parse();
  const [list, detail] = ROUTES[section];
  const render = params.length && detail ? detail : list;
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', link.dataset.route === section);
    if (link.dataset.route === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = h('div', { class: 'view', dataset: { page: section, view: params.length && detail ? 'detail' : 'list' } });
  replace(document.getElementById('main'), view);
  const current = render(view, params);
  page = current;
  document.title = `${section[0].toUpperCase()}${section.slice(1)}${params.length ? ' · ' + params.join('/') : ''} · Conveyor`;
  if (current.refresh) {
    const tick = async () => {
      await current.refresh();
      if (page !== current) return;
      view.dataset.loaded = 'true';
      if (!current.manual) timer = setTimeout(tick, REFRESH_MS);
    };
    await tick();
  } else {
    view.dataset.loaded = 'true';
  }
}

function status() {
  const dot = document.getElementById('live-dot');
  const text = document.getElementById('live-text');
  if (live.error) {
    dot.className = 'dot dot-error';
    replace(text, 'broker unreachable');
  } else if (live.overview) {
    dot.className = 'dot dot-ok';
    replace(text, `live · up ${format.duration(live.overview.uptime_ms)}`);
    replace(document.getElementById('broker-version'), `Conveyor ${live.overview.version}`);
  }
}

/** The sidebar's "who": the user and a log-out button, or nothing for the anonymous identity. */
async function who() {
  const slot = document.getElementById('who');
  try {
    const me = await api('/whoami');
    if (me.anonymous) {
      replace(slot);
      return;
    }
    const logout = async () => {
      await api('/logout', { method: 'POST' }).catch(() => null);
      location.hash = '#/login';
      replace(slot);
    };
    replace(slot, h('span', { dataset: { user: me.name } }, me.name), ' · ',
      h('button', { class: 'link', type: 'button', onclick: logout }, 'Log out'));
  } catch {
    replace(slot);
  }
}

// Without a login (where anonymous access is off) any call answers 401: to the login page, then back.
window.addEventListener('conveyor:unauthorized', () => {
  if (!location.hash.startsWith('#/login')) {
    sessionStorage.setItem('conveyor:after-login', location.hash || '#/overview');
    location.hash = '#/login';
  }
});
window.addEventListener('conveyor:logged-in', () => {
  who();
  location.hash = sessionStorage.getItem('conveyor:after-login') || '#/overview';
  sessionStorage.removeItem('conveyor:after-login');
});
who();
window.addEventListener('hashchange', route);
subscribe(status);
start();
route();
