// Formatting of times, durations, sizes and numbers for display; pure functions, no DOM and no state.

const pad = (n) => String(n).padStart(2, '0');

export function clock(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date();
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === today.toDateString() ? hm : `${d.getMonth() + 1}-${pad(d.getDate())} ${hm}`;
}

export function duration(seconds) {
  const t = Math.max(0, Math.round(seconds || 0));
  if (t < 60) return `${t}秒`;
  if (t < 3600) return `${Math.floor(t / 60)}分${pad(t % 60)}秒`;
  return `${Math.floor(t / 3600)}时${pad(Math.floor((t % 3600) / 60))}分`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function uid() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/-/g, '');
}

export function stamp(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export const pct = (x) => `${((x || 0) * 100).toFixed(1)}%`;
export const num = (x) => (x || 0).toLocaleString('zh-CN');
