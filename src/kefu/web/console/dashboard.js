// 数据看板: GET /api/v1/stats for a date range, drawn as cards, SVG charts and tables; the ROI calculator; CSV export.

import { REASON_TEXT } from './core/text.js';
import { duration, num, pct } from './core/format.js';
import { $, h, s, toast } from './core/dom.js';
import { S, isAdmin } from './core/state.js';
import { api } from './core/api.js';
import { loadAgents } from './core/colleagues.js';

const DAY = 86400000;
function isoDay(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())).toISOString(); }

export function renderDashboard() {
  const root = $('.dashboard');
  const today = new Date();
  if (!S.dashboard.from) { S.dashboard.to = isoDay(new Date(today.getTime() + DAY)); S.dashboard.from = isoDay(new Date(today.getTime() - 13 * DAY)); }
  const fromIn = h('input', { type: 'date', name: 'from', value: S.dashboard.from.slice(0, 10) });
  const toIn = h('input', { type: 'date', name: 'to', value: new Date(Date.parse(S.dashboard.to) - DAY).toISOString().slice(0, 10) });
  const body = h('div', { class: 'dash-body' }, h('p', { class: 'muted' }, '加载中…'));
  root.replaceChildren(
    h('div', { class: 'dash-head' },
      h('h2', {}, '数据看板 ', h('small', {}, 'Dashboard')),
      h('form', { class: 'range', onsubmit: (e) => {
        e.preventDefault();
        S.dashboard.from = new Date(fromIn.value + 'T00:00:00Z').toISOString();
        S.dashboard.to = new Date(Date.parse(toIn.value + 'T00:00:00Z') + DAY).toISOString();
        loadStats(body);
      } }, h('label', {}, '从', fromIn), h('label', {}, '到', toIn), h('button', { type: 'submit', class: 'primary' }, '查询'),
      h('button', { type: 'button', class: 'ghost csv', onclick: downloadCsv }, '导出 CSV'))),
    body);
  loadStats(body);
}

async function loadStats(body) {
  try {
    S.dashboard.data = await api(`stats?from=${encodeURIComponent(S.dashboard.from)}&to=${encodeURIComponent(S.dashboard.to)}&bucket=day`);
    drawStats(body, S.dashboard.data);
  } catch (e) {
    S.dashboard.data = null;
    body.replaceChildren(h('div', { class: 'card empty-state' }, e.status === 404 ? '统计接口 GET /api/v1/stats 暂不可用（服务器尚未提供）' : '无法加载统计：' + e.message));
  }
}

function drawStats(body, d) {
  const w = d.wait_seconds || {};
  const fr = d.first_response_seconds || {};
  const hd = d.handle_seconds || {};
  const cards = h('div', { class: 'cards' },
    statCard('会话数', num(d.sessions), `消息 ${num(d.messages)} 条`),
    statCard('机器人解决率', pct(d.bot_resolution_rate), `${num(d.bot_resolved)} / ${num(d.bot_sessions)} 个机器人会话`),
    statCard('转人工', num(d.handoffs), `放弃排队 ${num(d.abandoned)}`),
    statCard('等待时长 P50 / P90', `${duration(w.p50)} / ${duration(w.p90)}`, `平均 ${duration(w.avg)} · 最长 ${duration(w.max)}`),
    statCard('首次响应 P50 / P90', `${duration(fr.p50)} / ${duration(fr.p90)}`, `平均 ${duration(fr.avg)}`),
    statCard('处理时长 P50', duration(hd.p50), `P90 ${duration(hd.p90)}`));
  const series = d.series || [];
  const charts = h('div', { class: 'grid2' },
    h('section', { class: 'card chart-card' }, h('h4', {}, '每日会话量', h('small', {}, '总量 / 机器人解决')), barChart(series)),
    h('section', { class: 'card chart-card' }, h('h4', {}, '转人工原因'), reasonBars(d.handoff_reasons || {})));
  const waits = h('section', { class: 'card chart-card' }, h('h4', {}, '排队等待 P50 / P90（秒）'), waitChart(series));
  body.replaceChildren(cards, charts, h('div', { class: 'grid2' }, waits, roiPanel(d)),
    h('section', { class: 'card' }, h('h4', {}, '按技能组 By group'), breakdown(d.by_group || {}, '技能组')),
    h('section', { class: 'card' }, h('h4', {}, '按客服 By agent'), breakdown(d.by_agent || {}, '客服', S.agents)));
  if (isAdmin() && !S.agents) loadAgents().then(() => { if (S.dashboard.data === d && S.view === 'dashboard') drawStats(body, d); }).catch(() => {});
}

function statCard(label, value, sub) {
  return h('div', { class: 'card stat' }, h('small', {}, label), h('strong', {}, value), h('span', {}, sub));
}

function barChart(series) {
  if (!series.length) return h('p', { class: 'muted' }, '无数据');
  const W = 560; const H = 220; const L = 36; const B = 28; const T = 10;
  const max = Math.max(1, ...series.map((x) => x.sessions || 0));
  const step = (W - L - 8) / series.length;
  const bw = Math.max(4, Math.min(36, step * 0.62));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': '每日会话量柱状图' });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round(max * i / 4);
    svg.append(s('line', { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
  }
  series.forEach((p, i) => {
    const x = L + i * step + (step - bw) / 2;
    const total = p.sessions || 0;
    const bot = Math.min(total, p.bot_resolved || 0);
    svg.append(s('rect', { x, y: y(total), width: bw, height: Math.max(0, y(0) - y(total)), rx: 3, class: 'bar' }, s('title', {}, `${p.start.slice(5, 10)}：会话 ${total}，机器人解决 ${bot}`)));
    if (bot) svg.append(s('rect', { x, y: y(bot), width: bw, height: Math.max(0, y(0) - y(bot)), rx: 3, class: 'bar bot' }));
    if (series.length <= 16 || i % Math.ceil(series.length / 12) === 0) svg.append(s('text', { x: x + bw / 2, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, p.start.slice(5, 10)));
  });
  return h('div', {}, svg, h('div', { class: 'legend' }, h('span', { class: 'sw bar' }), '会话', h('span', { class: 'sw bot' }), '机器人解决'));
}

function reasonBars(reasons) {
  const entries = Object.entries(reasons).sort((a, b) => b[1] - a[1]);
  if (!entries.length || entries.every(([, v]) => !v)) return h('p', { class: 'muted' }, '无转人工');
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const total = entries.reduce((n, [, v]) => n + v, 0);
  return h('div', { class: 'hbars' }, ...entries.map(([k, v]) => {
    const fill = h('span', { class: 'fill' });
    fill.style.width = `${(v / max) * 100}%`;
    return h('div', { class: 'hbar' }, h('span', { class: 'label' }, REASON_TEXT[k] || k), h('span', { class: 'track' }, fill), h('span', { class: 'value' }, `${v} · ${Math.round((v / total) * 100)}%`));
  }));
}

function waitChart(series) {
  if (!series.length) return h('p', { class: 'muted' }, '无数据');
  const W = 560; const H = 200; const L = 40; const B = 26; const T = 10;
  const vals = series.flatMap((p) => [(p.wait_seconds || {}).p50 || 0, (p.wait_seconds || {}).p90 || 0]);
  const max = Math.max(1, ...vals);
  const x = (i) => L + (series.length === 1 ? (W - L) / 2 : (i * (W - L - 12)) / (series.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': '等待时长折线图' });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round(max * i / 4);
    svg.append(s('line', { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
  }
  for (const [key, cls] of [['p90', 'line p90'], ['p50', 'line p50']]) {
    const pts = series.map((p, i) => `${x(i)},${y((p.wait_seconds || {})[key] || 0)}`).join(' ');
    svg.append(s('polyline', { points: pts, class: cls }));
    series.forEach((p, i) => svg.append(s('circle', { cx: x(i), cy: y((p.wait_seconds || {})[key] || 0), r: 3, class: cls }, s('title', {}, `${p.start.slice(5, 10)} ${key.toUpperCase()} ${Math.round((p.wait_seconds || {})[key] || 0)} 秒`))));
  }
  series.forEach((p, i) => { if (series.length <= 16 || i % Math.ceil(series.length / 12) === 0) svg.append(s('text', { x: x(i), y: H - 6, class: 'axis', 'text-anchor': 'middle' }, p.start.slice(5, 10))); });
  return h('div', {}, svg, h('div', { class: 'legend' }, h('span', { class: 'sw p50' }), 'P50', h('span', { class: 'sw p90' }), 'P90'));
}

function breakdown(map, label, agents) {
  const rows = Object.entries(map);
  if (!rows.length) return h('p', { class: 'muted' }, '无数据');
  const nameOf = (id) => { const a = (agents || []).find((x) => x.agent_id === id); return a ? (a.name || a.email) : id; };
  return h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, ...[label, '会话', '消息', '转人工', '机器人解决率', '等待 P50', '等待 P90', '首响 P50', '处理 P50', '放弃'].map((t) => h('th', {}, t)))),
    h('tbody', {}, ...rows.sort((a, b) => (b[1].sessions || 0) - (a[1].sessions || 0)).map(([k, v]) => h('tr', {},
      h('td', {}, agents ? nameOf(k) : k), h('td', {}, num(v.sessions)), h('td', {}, num(v.messages)), h('td', {}, num(v.handoffs)),
      h('td', {}, pct(v.bot_resolution_rate)), h('td', {}, duration((v.wait_seconds || {}).p50)), h('td', {}, duration((v.wait_seconds || {}).p90)),
      h('td', {}, duration((v.first_response_seconds || {}).p50)), h('td', {}, duration((v.handle_seconds || {}).p50)), h('td', {}, num(v.abandoned))))));
}

function roiPanel(d) {
  const out = h('div', { class: 'roi-out' });
  const field = (key, label) => {
    const input = h('input', { type: 'number', min: 0, step: 'any', name: key, value: S.dashboard.roi[key] });
    input.addEventListener('input', () => { S.dashboard.roi[key] = Math.max(0, +input.value || 0); compute(); });
    return h('label', {}, label, input);
  };
  // Like with like: the range's savings scaled to a 30-day month, against the monthly cost and monthly revenue.
  const days = Math.max(1, Math.round((Date.parse(S.dashboard.to) - Date.parse(S.dashboard.from)) / DAY));
  const compute = () => {
    const saved = (d.bot_resolved || 0) * S.dashboard.roi.perChat * 30 / days;
    const cost = S.dashboard.roi.monthly;
    const roi = cost > 0 ? ((saved + S.dashboard.roi.revenue) / cost) * 100 : null;
    out.replaceChildren(
      h('div', {}, h('small', {}, '每月节省成本'), h('strong', {}, `¥${num(Math.round(saved))}`), h('span', {}, `${num(d.bot_resolved)} 个机器人解决 × ¥${S.dashboard.roi.perChat}，${days} 天折算为 30 天`)),
      h('div', {}, h('small', {}, 'ROI (每月)'), h('strong', { class: 'roi-value' }, roi === null ? '—' : `${roi.toFixed(1)}%`), h('span', {}, '(每月节省成本 + 每月新增收入) / 每月成本')));
  };
  compute();
  return h('section', { class: 'card roi' }, h('h4', {}, 'ROI 计算器'),
    h('div', { class: 'roi-in' }, field('perChat', '人工单次接待成本 (¥)'), field('monthly', '客服月成本 (¥)'), field('revenue', '每月新增收入 (¥)')), out);
}

function downloadCsv() {
  const d = S.dashboard.data;
  if (!d) { toast('没有可导出的数据', 'error'); return; }
  const cols = ['sessions', 'messages', 'bot_sessions', 'bot_resolved', 'bot_resolution_rate', 'handoffs', 'abandoned'];
  const stat = ['wait_seconds', 'first_response_seconds', 'handle_seconds'];
  const head = ['scope', 'key', ...cols, ...stat.flatMap((k) => ['avg', 'p50', 'p90', 'max'].map((q) => `${k}_${q}`))];
  const row = (scope, key, v) => [scope, key, ...cols.map((c) => v[c] ?? 0), ...stat.flatMap((k) => ['avg', 'p50', 'p90', 'max'].map((q) => (v[k] || {})[q] ?? 0))];
  const rows = [row('total', `${S.dashboard.from}/${S.dashboard.to}`, d)];
  for (const p of d.series || []) rows.push(row('day', p.start, p));
  for (const [k, v] of Object.entries(d.by_group || {})) rows.push(row('group', k, v));
  for (const [k, v] of Object.entries(d.by_agent || {})) rows.push(row('agent', k, v));
  const cell = (x) => { const t = String(x); return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t; };
  const csv = '\ufeff' + [head, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
  const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: `kefu-stats-${S.dashboard.from.slice(0, 10)}-${S.dashboard.to.slice(0, 10)}.csv` });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
