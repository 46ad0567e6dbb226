// Polls /api/v1/overview on a fixed period for the whole session (so the
// charts have history when the overview page opens) and turns successive
// totals into per-second rates: rate = Δtotal / Δt between two polls.

import { api } from './api.js';

export const POLL_MS = 2000;
export const WINDOW_MS = 5 * 60 * 1000;

export const live = {
  /** The latest overview, or null before the first answer. */
  overview: null,
  /** The latest failure, cleared by the next success. */
  error: null,
  /** [{t, values: {in, out, bytes_in, bytes_out}}], oldest first, within WINDOW_MS. */
  rates: [],
  /** [{t, values: {disk}}]. */
  disk: [],
};

const listeners = new Set();
let previous = null;

/** Calls `listener` after every poll; returns the unsubscribe function. */
export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function perSecond(now, before, seconds) {
  // A counter that went down means the broker restarted: no rate for that interval.
  return now >= before ? (now - before) / seconds : 0;
}

async function poll() {
  try {
    const overview = await api('/overview');
    const t = Date.now();
    if (previous && t > previous.t) {
      const seconds = (t - previous.t) / 1000;
      const before = previous.overview;
      live.rates.push({
        t,
        values: {
          in: perSecond(overview.messages_in_total, before.messages_in_total, seconds),
          out: perSecond(overview.messages_out_total, before.messages_out_total, seconds),
          bytes_in: perSecond(overview.bytes_in_total, before.bytes_in_total, seconds),
          bytes_out: perSecond(overview.bytes_out_total, before.bytes_out_total, seconds),
        },
      });
    }
    live.disk.push({ t, values: { disk: overview.bytes_on_disk } });
    for (const series of [live.rates, live.disk]) {
      while (series.length && series[0].t < t - WINDOW_MS) series.shift();
    }
    previous = { t, overview };
    live.overview = overview;
    live.error = null;
  } catch (error) {
    live.error = error;
  }
  for (const listener of listeners) listener();
}

let started = false;

/** Starts polling (once). */
export function start() {
  if (started) return;
  started = true;
  const loop = async () => {
    await poll();
    setTimeout(loop, POLL_MS);
  };
  loop();
}
