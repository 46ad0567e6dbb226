// How numbers, sizes, rates and times read in the console.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function count(value) {
  return value === null || value === undefined ? '—' : integer.format(value);
}

export function bytes(value) {
  if (value === null || value === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let amount = value;
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? integer.format(amount) : decimal.format(amount)} ${units[unit]}`;
}

export function rate(value, unit = 'msg/s') {
  if (value === null || value === undefined) return '—';
  // A rate is never below zero; this also turns -0 into 0 (no "-0.0").
  value = Math.max(0, value);
  return `${value >= 100 ? integer.format(value) : decimal.format(value)} ${unit}`;
}

export function duration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** Time of day for today's moments, date and time for older ones. */
export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const date = new Date(ms);
  const today = date.toDateString() === new Date().toDateString();
  return today ? date.toLocaleTimeString('en-GB') : date.toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'medium' });
}

/** A round top for a bytes axis: a round number of the unit the value reads in. */
export function bytesCeil(value, niceCeil) {
  let unit = 1;
  while (value / unit >= 1024) unit *= 1024;
  return niceCeil(value / unit) * unit;
}
