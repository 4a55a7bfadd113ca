// kefu agent console (客服工作台): one ES module, no framework, no build step.
// It speaks only the public contract: /api/v1 over HTTP and /ws/agent over WebSocket.
// Text from visitors and agents is always inserted as text (textContent / text nodes), never as HTML.

const API = '/api/v1';
const TOKEN_KEY = 'kefu.console.token';
const PROFILE_KEY = 'kefu.console.profiles';
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;
const QUEUE_REFRESH_MS = 15000;
const PING_EVERY_MS = 25000;
const PONG_TIMEOUT_MS = 10000;
const LATE_AFTER_S = 60;

const STATUS_TEXT = { online: '在线', busy: '忙碌', offline: '离线' };
const CONV_STATUS_TEXT = { bot: '机器人', queued: '排队中', active: '进行中', closed: '已结束' };
const CHANNEL_TEXT = { web: '网页 Web', mobile: '移动端 App', miniprogram: '小程序' };
const REASON_TEXT = {
  low_confidence: '置信度低', user_request: '用户要求人工', no_answer: '无答案',
  negative_feedback: '差评反馈', repeated_question: '重复提问',
};

// --- small DOM helpers ------------------------------------------------------------------------------

/** An element; string children become text nodes, so nothing here ever parses HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const ICONS = {
  clip: 'M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l8-8',
  file: 'M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5M9 13h6M9 17h6',
  chat: 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12zM8.5 12h.01M12 12h.01M15.5 12h.01',
};
const icon = (name, cls = 'icon') => s('svg', { viewBox: '0 0 24 24', class: cls, 'aria-hidden': 'true' }, s('path', { d: ICONS[name] }));

const $ = (sel, root = document) => root.querySelector(sel);
const pad = (n) => String(n).padStart(2, '0');

function clock(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date();
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === today.toDateString() ? hm : `${d.getMonth() + 1}-${pad(d.getDate())} ${hm}`;
}

function duration(seconds) {
  const t = Math.max(0, Math.round(seconds || 0));
  if (t < 60) return `${t}秒`;
  if (t < 3600) return `${Math.floor(t / 60)}分${pad(t % 60)}秒`;
  return `${Math.floor(t / 3600)}时${pad(Math.floor((t % 3600) / 60))}分`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function uid() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/-/g, '');
}

// --- state ------------------------------------------------------------------------------------------

const S = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null, // the agent record from login / ready
  status: 'offline',
  convs: new Map(), // session_id -> Conv (the agent's own chats, live over the socket)
  tab: 'mine',
  current: null, // {sid, live: bool}
  archive: null, // the archive record shown read-only
  queue: [], all: [],
  canned: [], cannedState: 'unknown', // 'unknown' | 'ok' | 'missing'
  outbox: new Map(), // client_msg_id -> {sid, msg_type, content, attachment_id}: sent until the server echoes it
  ws: null, conn: 'idle', attempts: 0, retryTimer: null, pingTimer: null, pongTimer: null,
  syncing: new Set(),
  blobs: new Map(), // url -> Promise<object URL>
  audio: null,
  lastTypingSent: 0,
  view: 'chat',
};

function newConv(sid) {
  return {
    sid, rec: { session_id: sid, status: 'active' }, msgs: new Map(), lastSeq: 0, readSeq: 0, peerRead: 0,
    profile: null, typingUntil: 0, gone: false,
  };
}

function conv(sid) {
  let c = S.convs.get(sid);
  if (!c) {
    c = newConv(sid);
    const saved = savedProfiles()[sid];
    if (saved) c.profile = saved;
    S.convs.set(sid, c);
  }
  return c;
}

function savedProfiles() {
  try { return JSON.parse(sessionStorage.getItem(PROFILE_KEY) || '{}'); } catch { return {}; }
}

/** The `assigned` frame's visitor profile and transfer note survive a reload of this tab. */
function saveProfile(sid, profile) {
  const all = savedProfiles();
  all[sid] = profile;
  const keys = Object.keys(all);
  for (const k of keys.slice(0, Math.max(0, keys.length - 50))) delete all[k];
  sessionStorage.setItem(PROFILE_KEY, JSON.stringify(all));
}

const isAdmin = () => S.me && S.me.role === 'admin';
const isOpen = (c) => c && !c.gone && c.rec.status !== 'closed';

// --- HTTP -------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, { method = 'GET', body, form, raw } = {}) {
  const headers = {};
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  let r;
  try {
    r = await fetch(/^(\/|https?:)/.test(path) ? path : `${API}/${path}`, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', '网络不可用，请稍后再试');
  }
  if (r.status === 401 && S.token && !path.endsWith('auth/login')) { logout('登录已过期，请重新登录'); throw new ApiError(401, 'unauthorized', '登录已过期'); }
  if (raw) {
    if (!r.ok) throw new ApiError(r.status, 'http_' + r.status, r.statusText);
    return r;
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(r.status, err.code || 'http_' + r.status, err.message || `请求失败 (${r.status})`);
  }
  return data;
}

/** Attachments need the bearer token, so they are fetched and shown through object URLs (cached per URL). */
function blobUrl(url) {
  if (!S.blobs.has(url)) {
    S.blobs.set(url, api(url, { raw: true }).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
    S.blobs.get(url).catch(() => S.blobs.delete(url));
  }
  return S.blobs.get(url);
}

// --- toasts, sound, notifications ----------------------------------------------------------------------

function toast(text, kind = 'info') {
  const area = $('.toasts');
  if (!area) return;
  const el = h('div', { class: `toast ${kind}`, role: 'status' }, text);
  area.append(el);
  while (area.children.length > 3) area.firstElementChild.remove();
  setTimeout(() => el.remove(), 4000);
}

function beep() {
  if (!S.audio) return;
  try {
    const ctx = S.audio;
    const now = ctx.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.16);
      gain.gain.exponentialRampToValueAtTime(0.18, now + i * 0.16 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.16 + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + i * 0.16);
      osc.stop(now + i * 0.16 + 0.16);
    }
  } catch { /* no sound is fine */ }
}

/** Called from a click: browsers only allow notification prompts and audio after a user gesture. */
async function enableAlerts() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !S.audio) S.audio = new Ctx();
    if (S.audio && S.audio.state === 'suspended') await S.audio.resume();
  } catch { S.audio = null; }
  if ('Notification' in window && Notification.permission === 'default') {
    try { await Notification.requestPermission(); } catch { /* ignored */ }
  }
  beep();
  renderHeader();
  toast(alertsOn() ? '新会话提醒已开启' : '已开启提示音；浏览器通知未获授权');
}

const alertsOn = () => 'Notification' in window && Notification.permission === 'granted';

function notifyAssigned(c) {
  beep();
  const name = visitorName(c);
  if (alertsOn() && (document.hidden || !document.hasFocus())) {
    try {
      const n = new Notification('新会话分配', { body: `${name}${c.profile && c.profile.note ? '（转接）' : ''} · ${c.sid}`, tag: c.sid });
      n.onclick = () => { window.focus(); openChat(c.sid); n.close(); };
    } catch { /* some browsers only allow notifications from a service worker */ }
  }
}

// --- WebSocket ----------------------------------------------------------------------------------------

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws/agent?token=${encodeURIComponent(S.token)}`;
}

function wsSend(frame) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN || S.conn !== 'live') return false;
  S.ws.send(JSON.stringify(frame));
  return true;
}

function connect() {
  clearTimeout(S.retryTimer);
  if (!S.token || S.ws) return;
  if (!navigator.onLine) { setConn('offline'); return; }
  setConn(S.attempts ? 'reconnecting' : 'connecting');
  const ws = new WebSocket(wsUrl());
  S.ws = ws;
  ws.onmessage = (ev) => {
    let frame;
    try { frame = JSON.parse(ev.data); } catch { return; }
    onFrame(frame);
  };
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    dropSocket();
    if (ev.code === 4401) { logout('登录已过期，请重新登录'); return; }
    scheduleReconnect();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function dropSocket() {
  const ws = S.ws;
  S.ws = null;
  clearInterval(S.pingTimer);
  clearTimeout(S.pongTimer);
  S.syncing.clear();
  if (ws) { ws.onclose = null; ws.onmessage = null; try { ws.close(); } catch { /* already closed */ } }
  if (S.token) setConn(navigator.onLine ? 'reconnecting' : 'offline');
}

function scheduleReconnect() {
  if (!S.token) return;
  clearTimeout(S.retryTimer);
  // Exponential backoff with full jitter, so a restarted server is not hit by every console at once.
  const cap = Math.min(30000, 500 * 2 ** Math.min(S.attempts, 6));
  const delay = cap / 2 + Math.random() * cap / 2;
  S.attempts += 1;
  S.retryTimer = setTimeout(connect, delay);
}

function setConn(state) {
  S.conn = state;
  const banner = $('.banner');
  if (!banner) return;
  const text = {
    connecting: '正在连接服务器…', reconnecting: '连接已断开，正在重新连接…', offline: '网络已断开，恢复后将自动重连并同步消息',
    syncing: '正在同步消息…',
  }[state];
  banner.textContent = text || '';
  banner.hidden = !text;
  banner.dataset.state = state;
  const dot = $('.conn-dot');
  if (dot) { dot.dataset.state = state; dot.title = state === 'live' ? '已连接' : text || ''; }
}

function onFrame(f) {
  switch (f.type) {
    case 'ready': return onReady(f);
    case 'message': return onMessage(f);
    case 'conversation': return onConversation(f);
    case 'assigned': return onAssigned(f);
    case 'synced': return onSynced(f);
    case 'ack': return onAck(f);
    case 'agent_status': return onAgentStatus(f);
    case 'typing': return onTyping(f);
    case 'read': return onRead(f);
    case 'error': return onError(f);
    case 'pong': clearTimeout(S.pongTimer); return undefined;
    default: return undefined; // frame types this console does not know are ignored
  }
}

function onReady(f) {
  S.me = { ...(S.me || {}), ...(f.you || {}) };
  S.status = (f.you && f.you.status) || S.status;
  S.attempts = 0;
  S.conn = 'live';
  const open = new Set();
  for (const rec of f.conversations || []) {
    open.add(rec.session_id);
    const c = conv(rec.session_id);
    c.rec = { ...c.rec, ...rec };
    c.gone = false;
  }
  // Chats we held that are no longer ours were closed or transferred while we were away.
  for (const c of S.convs.values()) {
    if (!open.has(c.sid) && isOpen(c)) refreshClosed(c);
  }
  const wanted = /^#\/c\/(.+)$/.exec(location.hash);
  if (!S.current && wanted && open.has(decodeURIComponent(wanted[1]))) S.current = { sid: decodeURIComponent(wanted[1]), live: true };
  setConn(open.size ? 'syncing' : 'live');
  for (const sid of open) startSync(conv(sid));
  for (const sid of open) if (!conv(sid).profile) fillProfile(conv(sid));
  if (!open.size) afterSync();
  clearInterval(S.pingTimer);
  S.pingTimer = setInterval(() => {
    if (!wsSend({ type: 'ping' })) return;
    clearTimeout(S.pongTimer);
    S.pongTimer = setTimeout(() => { dropSocket(); scheduleReconnect(); }, PONG_TIMEOUT_MS);
  }, PING_EVERY_MS);
  renderAll();
  refreshQueue();
  if (isAdmin() && !agentsCache) loadAgents().then(renderChat).catch(() => {});
}

function startSync(c) {
  S.syncing.add(c.sid);
  S.ws.send(JSON.stringify({ type: 'sync', ref: 'sync:' + c.sid, session_id: c.sid, after_seq: c.lastSeq }));
}

function onSynced(f) {
  const c = S.convs.get(f.session_id);
  if (c) c.lastSeq = Math.max(c.lastSeq, f.last_seq || 0);
  S.syncing.delete(f.session_id);
  if (!S.syncing.size) afterSync();
}

function afterSync() {
  setConn('live');
  // Whatever was sent but never echoed goes again under the same client_msg_id: the server never duplicates it.
  for (const [cmid, m] of S.outbox) {
    const c = S.convs.get(m.sid);
    if (!isOpen(c)) { S.outbox.delete(cmid); continue; }
    wsSend({ type: 'send', ref: 'send:' + cmid, session_id: m.sid, client_msg_id: cmid, msg_type: m.msg_type, content: m.content, attachment_id: m.attachment_id });
  }
  renderAll();
  markRead();
}

/** A device that missed the `assigned` frame (logged in later) takes what the archive record knows. */
async function fillProfile(c) {
  try {
    const a = await api(`conversations/${encodeURIComponent(c.sid)}`);
    if (c.profile) return;
    c.profile = {
      visitor: { user_id: a.user_id, visitor_id: c.rec.visitor_id, name: null }, tags: a.tags || {}, client_tags: {},
      context: a.context, channel: a.channel, group: a.group, handoff_reason: a.handoff_reason, note: null, from_agent_id: null,
    };
    renderAll();
  } catch { /* the panel shows what the conversation record has */ }
}

async function refreshClosed(c) {
  try {
    const rec = await api(`conversations/${encodeURIComponent(c.sid)}`);
    c.rec = { ...c.rec, status: rec.status, closed_at: rec.closed_at };
    if (rec.status !== 'closed' && rec.agent_id !== (S.me && S.me.agent_id)) c.gone = true;
    for (const m of rec.messages || []) if (m.seq && !c.msgs.has(m.seq)) addMessage(c, { ...m, session_id: c.sid });
  } catch { c.rec = { ...c.rec, status: 'closed' }; }
  renderAll();
}

function addMessage(c, m) {
  if (!m.seq || c.msgs.has(m.seq)) return false; // every device gets every message: one copy per seq
  c.msgs.set(m.seq, m);
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  if (m.client_msg_id && S.outbox.has(m.client_msg_id) && m.sender_id === S.me.agent_id) S.outbox.delete(m.client_msg_id);
  return true;
}

function onMessage(f) {
  const c = conv(f.session_id);
  if (!addMessage(c, f)) return;
  if (f.sender === 'user') c.typingUntil = 0;
  if (S.current && S.current.sid === c.sid && S.current.live) {
    renderMessage(c, f);
    if (f.client_msg_id) { const p = $(`.msg.pending[data-cmid="${CSS.escape(f.client_msg_id)}"]`); if (p) p.remove(); }
    renderTyping();
    scrollDown(f.sender_id === S.me.agent_id);
    markRead();
  }
  renderList();
}

function onAck(f) {
  if (f.client_msg_id && S.outbox.has(f.client_msg_id)) {
    S.outbox.delete(f.client_msg_id);
    const c = S.convs.get(f.session_id);
    // The message frame normally comes first; if the ack wins, the pending bubble waits for it.
    if (c && c.msgs.has(f.seq)) { const p = $(`.msg.pending[data-cmid="${CSS.escape(f.client_msg_id)}"]`); if (p) p.remove(); }
  }
}

function onConversation(f) {
  const c = S.convs.get(f.session_id);
  const mine = f.agent && S.me && f.agent.agent_id === S.me.agent_id;
  if (!c) {
    if (mine && f.status === 'active') conv(f.session_id).rec = { ...f };
    refreshQueueSoon();
    renderList();
    return;
  }
  const wasOpen = isOpen(c);
  c.rec = { ...c.rec, ...f };
  if (f.status !== 'closed' && !mine) {
    if (!c.gone) toast(`会话 ${c.sid} 已转出${f.agent && f.agent.name ? '给 ' + f.agent.name : f.status === 'queued' ? '到 ' + f.group + ' 组排队' : ''}`);
    c.gone = true;
  } else if (f.status === 'closed' && wasOpen) {
    toast(`会话 ${c.sid} 已结束`);
  }
  refreshQueueSoon();
  renderAll();
}

function onAssigned(f) {
  const c = conv(f.session_id);
  const fresh = !isOpen(c) || !c.profile || c.gone;
  c.gone = false;
  c.rec = { ...c.rec, ...(f.conversation || {}), status: (f.conversation && f.conversation.status) || 'active' };
  c.profile = {
    visitor: f.visitor, tags: f.tags || {}, client_tags: f.client_tags || {}, context: f.context, channel: f.channel,
    group: f.group, handoff_reason: f.handoff_reason, note: f.note || null, from_agent_id: f.from_agent_id || null,
    from_agent_name: null,
  };
  saveProfile(c.sid, c.profile);
  for (const m of f.transcript || []) addMessage(c, m);
  if (S.conn === 'live' || S.conn === 'syncing') startSync(c);
  if (c.profile.from_agent_id && isAdmin()) resolveAgentName(c);
  if (fresh) notifyAssigned(c);
  if (!S.current || !S.current.live || !isOpen(S.convs.get(S.current.sid))) openChat(c.sid);
  else if (fresh) toast(`新会话：${visitorName(c)}${f.note ? '（转接，附内部备注）' : ''}`, 'accent');
  refreshQueueSoon();
  renderAll();
}

async function resolveAgentName(c) {
  const agents = await loadAgents().catch(() => []);
  const a = agents.find((x) => x.agent_id === c.profile.from_agent_id);
  if (a) { c.profile.from_agent_name = a.name || a.email; saveProfile(c.sid, c.profile); renderChat(); }
}

function onAgentStatus(f) {
  if (!S.me || f.agent_id !== S.me.agent_id) return;
  S.status = f.status;
  renderHeader();
}

function onTyping(f) {
  if (f.sender !== 'user') return;
  const c = S.convs.get(f.session_id);
  if (!c) return;
  c.typingUntil = Date.now() + TYPING_SHOWN_MS;
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function onRead(f) {
  const c = S.convs.get(f.session_id);
  if (!c) return;
  if (f.sender === 'user') {
    c.peerRead = Math.max(c.peerRead, f.seq || 0);
    if (S.current && S.current.sid === c.sid) renderMarks(c);
  } else if (f.sender === 'agent') {
    c.readSeq = Math.max(c.readSeq, f.seq || 0); // read on another of this agent's devices
    renderList();
  }
}

function onError(f) {
  const ref = f.ref || '';
  if (ref.startsWith('sync:')) {
    const sid = ref.slice(5);
    S.syncing.delete(sid);
    const c = S.convs.get(sid);
    if (c) refreshClosed(c);
    if (!S.syncing.size) afterSync();
    return;
  }
  if (ref.startsWith('send:')) {
    const cmid = ref.slice(5);
    const m = S.outbox.get(cmid);
    S.outbox.delete(cmid);
    const p = $(`.msg.pending[data-cmid="${CSS.escape(cmid)}"]`);
    if (p) { p.classList.add('failed'); const mark = $('.mark', p); if (mark) mark.textContent = '发送失败'; }
    if (m && f.code === 'conversation_closed') refreshClosed(conv(m.sid));
  }
  if (ref.startsWith('transfer:')) { const d = $('#transfer-dialog .error'); if (d) d.textContent = f.message; }
  toast(f.message || f.code, 'error');
}

function markRead() {
  if (!S.current || !S.current.live || document.visibilityState !== 'visible') return;
  const c = S.convs.get(S.current.sid);
  if (!c || c.lastSeq <= c.readSeq) return;
  if (wsSend({ type: 'read', session_id: c.sid, seq: c.lastSeq })) { c.readSeq = c.lastSeq; renderList(); }
}

// --- queue and search lists -------------------------------------------------------------------------

let queueTimer = null;
async function refreshQueue() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(refreshQueue, QUEUE_REFRESH_MS);
  if (!S.token) return;
  try {
    const data = await api('conversations?status=queued&limit=100');
    S.queue = (data.items || []).slice().reverse(); // oldest first: the head of the queue on top
    if (isAdmin()) {
      const all = await api('conversations?limit=100');
      S.all = all.items || [];
    }
    renderList();
  } catch (e) { if (e.status !== 401) console.warn('queue refresh failed', e); }
}

let queueSoon = null;
function refreshQueueSoon() {
  clearTimeout(queueSoon);
  queueSoon = setTimeout(refreshQueue, 300);
}

// --- canned responses ---------------------------------------------------------------------------------

async function loadCanned() {
  try {
    const data = await api('canned-responses');
    S.canned = (data.items || []).slice().sort((a, b) => a.shortcut.localeCompare(b.shortcut));
    S.cannedState = 'ok';
  } catch (e) {
    S.canned = [];
    S.cannedState = e.status === 404 || e.status === 405 ? 'missing' : 'unknown';
  }
}

function cannedMatches(text) {
  const m = /^\/(\S*)$/.exec(text);
  if (!m) return [];
  const q = m[1].toLowerCase();
  return S.canned.filter((c) => c.shortcut.replace(/^\//, '').toLowerCase().startsWith(q)).slice(0, 8);
}

// --- login / logout -----------------------------------------------------------------------------------

function logout(reason) {
  S.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PROFILE_KEY);
  dropSocket();
  clearTimeout(S.retryTimer);
  clearTimeout(queueTimer);
  for (const p of S.blobs.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  composers.clear();
  Object.assign(S, { me: null, convs: new Map(), current: null, archive: null, queue: [], all: [], outbox: new Map(), blobs: new Map(), attempts: 0, conn: 'idle' });
  renderLogin(reason);
}

function renderLogin(message) {
  const app = $('#app');
  app.className = 'login-page';
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  const lastApp = localStorage.getItem('kefu.console.app') || new URLSearchParams(location.search).get('app_id') || '';
  const form = h('form', { id: 'login', class: 'login-card', autocomplete: 'on' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo' }, '客'), h('div', {}, h('strong', {}, 'kefu 客服工作台'), h('small', {}, 'Agent Console'))),
    h('label', {}, '应用 ID (App ID)', h('input', { name: 'app_id', required: true, value: lastApp, placeholder: 'app_…', autocomplete: 'organization' })),
    h('label', {}, '邮箱 Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' })),
    h('label', {}, '密码 Password', h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' })),
    err,
    h('button', { type: 'submit', class: 'primary wide' }, '登录'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const btn = $('button', form);
    btn.disabled = true;
    err.textContent = '';
    try {
      const data = await api('auth/login', { method: 'POST', body: { app_id: fd.get('app_id').trim(), email: fd.get('email').trim(), password: fd.get('password') } });
      S.token = data.token;
      S.me = data.agent;
      sessionStorage.setItem(TOKEN_KEY, data.token);
      localStorage.setItem('kefu.console.app', fd.get('app_id').trim());
      start();
    } catch (e) {
      err.textContent = e.code === 'invalid_credentials' || e.status === 401 ? '应用 ID、邮箱或密码不正确' : e.message;
      btn.disabled = false;
    }
  });
  app.replaceChildren(form);
  $('input[name=' + (lastApp ? 'email' : 'app_id') + ']', form).focus();
}

// --- shell ------------------------------------------------------------------------------------------

async function start() {
  const app = $('#app');
  app.className = 'shell';
  app.replaceChildren(
    h('header', { class: 'topbar' },
      h('div', { class: 'brand' }, h('span', { class: 'logo' }, '客'), h('strong', {}, 'kefu 客服工作台')),
      h('nav', { class: 'nav' },
        h('a', { href: '#/', dataset: { view: 'chat' } }, '会话'),
        h('a', { href: '#/dashboard', dataset: { view: 'dashboard' } }, '数据看板')),
      h('div', { class: 'spacer' }),
      h('span', { class: 'conn-dot', dataset: { state: 'connecting' } }),
      h('div', { class: 'status-switch', role: 'group', 'aria-label': '我的状态' },
        ...['online', 'busy', 'offline'].map((st) => h('button', { type: 'button', dataset: { status: st }, onclick: () => setStatus(st) }, STATUS_TEXT[st]))),
      h('button', { type: 'button', class: 'ghost alerts', onclick: enableAlerts, title: '浏览器通知与提示音' }, '开启提醒'),
      h('button', { type: 'button', class: 'ghost canned-open', onclick: openCannedDialog }, '快捷回复'),
      h('div', { class: 'whoami' }, h('span', { class: 'me-status' }), h('span', { class: 'me-name' })),
      h('button', { type: 'button', class: 'ghost logout', onclick: () => logout() }, '退出')),
    h('div', { class: 'banner', hidden: true, role: 'status' }),
    h('main', { class: 'workspace' },
      h('aside', { class: 'sidebar' },
        h('div', { class: 'tabs', role: 'tablist' }),
        h('ul', { class: 'conv-list' })),
      h('section', { class: 'chat' }),
      h('aside', { class: 'profile' })),
    h('main', { class: 'dashboard', hidden: true }),
    h('div', { class: 'toasts', 'aria-live': 'polite' }),
  );
  renderAll();
  route();
  connect();
  loadCanned().then(renderComposerHint);
}

function setStatus(status) {
  if (!wsSend({ type: 'set_status', status, ref: 'status:' + status })) { toast('未连接到服务器，稍后再试', 'error'); return; }
  S.status = status; // agent_status from the server confirms it on every device
  renderHeader();
}

function route() {
  const view = location.hash.startsWith('#/dashboard') ? 'dashboard' : 'chat';
  S.view = view;
  const ws = $('.workspace');
  const db = $('.dashboard');
  if (!ws) return;
  ws.hidden = view !== 'chat';
  db.hidden = view !== 'dashboard';
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.view === view);
  if (view === 'dashboard') renderDashboard();
}

function renderAll() {
  renderHeader();
  renderList();
  renderChat();
}

function renderHeader() {
  const sw = $('.status-switch');
  if (!sw) return;
  for (const b of sw.querySelectorAll('button')) b.classList.toggle('on', b.dataset.status === S.status);
  const st = $('.me-status');
  st.dataset.status = S.status;
  st.textContent = STATUS_TEXT[S.status] || S.status;
  $('.me-name').textContent = S.me ? `${S.me.name || S.me.email || ''}${isAdmin() ? ' · 管理员' : ''}` : '';
  const al = $('.alerts');
  if (al) { al.classList.toggle('on', !!S.audio); al.textContent = S.audio ? (alertsOn() ? '提醒已开启' : '提示音已开启') : '开启提醒'; }
}

// --- conversation list --------------------------------------------------------------------------------

function visitorName(c) {
  const v = c.profile && c.profile.visitor;
  return (v && (v.name || v.user_id)) || (c.rec && (c.rec.user_id || c.rec.visitor_id)) || '访客';
}

function unread(c) {
  let n = 0;
  for (const m of c.msgs.values()) if (m.sender === 'user' && m.seq > c.readSeq) n += 1;
  return n;
}

function lastMessage(c) {
  let last = null;
  for (const m of c.msgs.values()) if (!last || m.seq > last.seq) last = m;
  return last;
}

/** Since when the visitor has waited for an answer: their latest message after the last agent message. */
function waitingSince(c) {
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  let since = null;
  for (const m of msgs) {
    if (m.sender === 'user') since = since || m.timestamp;
    else if (m.sender === 'agent') since = null;
  }
  return isOpen(c) ? since : null;
}

function preview(m) {
  if (!m) return '';
  if (m.msg_type === 'image') return '[图片] ' + (m.content || '');
  if (m.msg_type === 'file') return '[文件] ' + ((m.attachment && m.attachment.name) || m.content || '');
  return (m.sender === 'agent' ? '我: ' : m.sender === 'bot' ? '机器人: ' : '') + (m.content || '');
}

function mineSorted() {
  return [...S.convs.values()].filter((c) => !c.gone).sort((a, b) => {
    if (isOpen(a) !== isOpen(b)) return isOpen(a) ? -1 : 1;
    const wa = waitingSince(a); const wb = waitingSince(b);
    if (!!wa !== !!wb) return wa ? -1 : 1;
    const la = lastMessage(a); const lb = lastMessage(b);
    return String((lb && lb.timestamp) || b.rec.created_at || '').localeCompare(String((la && la.timestamp) || a.rec.created_at || ''));
  });
}

function renderList() {
  const tabs = $('.tabs');
  if (!tabs) return;
  const mine = mineSorted();
  const open = mine.filter(isOpen);
  const defs = [['mine', '我的会话', open.length], ['queue', '排队', S.queue.length]];
  if (isAdmin()) defs.push(['all', '全部', null]);
  tabs.replaceChildren(...defs.map(([key, label, n]) => h('button', {
    type: 'button', role: 'tab', class: S.tab === key ? 'on' : '', dataset: { tab: key },
    'aria-selected': S.tab === key ? 'true' : 'false',
    onclick: () => { S.tab = key; renderList(); if (key !== 'mine') refreshQueue(); },
  }, label, n !== null ? h('span', { class: 'count' }, String(n)) : null)));

  const list = $('.conv-list');
  let items;
  if (S.tab === 'mine') {
    items = mine.map((c) => {
      const last = lastMessage(c);
      const n = unread(c);
      const since = waitingSince(c);
      return h('li', {
        class: `conv-item${S.current && S.current.sid === c.sid ? ' active' : ''}${isOpen(c) ? '' : ' closed'}`,
        dataset: { sid: c.sid }, tabindex: 0, onclick: () => openChat(c.sid), onkeydown: (e) => { if (e.key === 'Enter') openChat(c.sid); },
      },
      h('div', { class: 'row' },
        h('span', { class: 'avatar' }, visitorName(c).slice(0, 1).toUpperCase()),
        h('span', { class: 'name' }, visitorName(c)),
        c.profile && c.profile.note && isOpen(c) ? h('span', { class: 'pill warn' }, '转接') : null,
        h('span', { class: 'time' }, last ? clock(last.timestamp) : '')),
      h('div', { class: 'row sub' },
        h('span', { class: 'preview' }, isOpen(c) ? preview(last) : '已结束 · ' + preview(last)),
        since ? h('span', { class: 'wait', dataset: { since } }, '') : null,
        n ? h('span', { class: 'badge unread' }, String(n)) : null));
    });
    if (!items.length) items = [h('li', { class: 'empty' }, S.status === 'online' ? '暂无会话，新会话会自动分配给你' : '切换到“在线”开始接待访客')];
  } else {
    const rows = S.tab === 'queue' ? S.queue : S.all;
    items = rows.map((r) => h('li', {
      class: `conv-item${S.current && S.current.sid === r.session_id ? ' active' : ''}`, dataset: { sid: r.session_id }, tabindex: 0,
      onclick: () => (S.convs.has(r.session_id) && isOpen(S.convs.get(r.session_id)) ? openChat(r.session_id) : openArchive(r.session_id)),
    },
    h('div', { class: 'row' },
      h('span', { class: 'avatar muted' }, String(r.user_id || r.visitor_id || '访').slice(0, 1).toUpperCase()),
      h('span', { class: 'name' }, r.user_id || r.visitor_id || r.session_id),
      h('span', { class: `pill st-${r.status}` }, CONV_STATUS_TEXT[r.status] || r.status)),
    h('div', { class: 'row sub' },
      h('span', { class: 'preview' }, `${r.session_id} · ${r.group || 'default'}${r.agent && r.agent.name ? ' · ' + r.agent.name : ''}`),
      r.status === 'queued' ? h('span', { class: 'wait', dataset: { since: r.created_at } }, '') : h('span', { class: 'time' }, clock(r.created_at)))));
    if (!items.length) items = [h('li', { class: 'empty' }, S.tab === 'queue' ? '队列为空' : '暂无会话')];
  }
  list.replaceChildren(...items);
  tickWaits();
  const total = open.reduce((n, c) => n + unread(c), 0);
  document.title = `${total ? `(${total}) ` : ''}kefu 客服工作台`;
}

function tickWaits() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.wait[data-since]')) {
    const secs = (now - Date.parse(el.dataset.since)) / 1000;
    el.textContent = '等待 ' + duration(secs);
    el.classList.toggle('late', secs > LATE_AFTER_S);
  }
}

// --- chat view ------------------------------------------------------------------------------------------

function openChat(sid) {
  S.current = { sid, live: true };
  S.archive = null;
  if (location.hash.startsWith('#/dashboard')) location.hash = '#/';
  history.replaceState(null, '', '#/c/' + encodeURIComponent(sid)); // a reload reopens this chat
  renderList();
  renderChat();
  markRead();
  const box = $('.composer textarea');
  if (box) box.focus();
}

async function openArchive(sid) {
  S.current = { sid, live: false };
  S.archive = null;
  renderList();
  renderChat();
  try {
    S.archive = await api(`conversations/${encodeURIComponent(sid)}`);
  } catch (e) {
    toast(e.message, 'error');
    return;
  }
  if (S.current && S.current.sid === sid) renderChat();
}

function currentConv() {
  if (!S.current) return null;
  if (S.current.live) return S.convs.get(S.current.sid) || null;
  if (!S.archive || S.archive.session_id !== S.current.sid) return null;
  const a = S.archive;
  const c = newConv(a.session_id);
  c.rec = { session_id: a.session_id, status: a.status, group: a.group, channel: a.channel, user_id: a.user_id, created_at: a.created_at, closed_at: a.closed_at };
  c.profile = { visitor: { user_id: a.user_id, name: null }, tags: a.tags || {}, client_tags: {}, context: a.context, channel: a.channel, group: a.group, handoff_reason: a.handoff_reason };
  for (const m of a.messages || []) addMessage(c, { ...m, session_id: a.session_id, seq: m.seq });
  c.archived = true;
  return c;
}

function renderChat() {
  const pane = $('.chat');
  if (!pane) return;
  const c = currentConv();
  if (!c) {
    delete pane.dataset.sid;
    pane.replaceChildren(h('div', { class: 'placeholder' },
      icon('chat', 'icon ph-icon'),
      h('p', {}, S.current ? '正在加载会话…' : '从左侧选择一个会话'),
      h('small', {}, '新会话分配给你时会自动打开，并以提示音提醒')));
    renderProfile(null);
    return;
  }
  const open = isOpen(c) && !c.archived;
  const p = c.profile || {};
  const head = h('div', { class: 'chat-head' },
    h('div', { class: 'who' },
      h('strong', { class: 'chat-title' }, visitorName(c)),
      h('span', { class: `pill st-${c.rec.status}` }, c.gone ? '已转出' : CONV_STATUS_TEXT[c.rec.status] || c.rec.status),
      h('small', { class: 'sid' }, `${c.sid} · ${c.rec.group || p.group || 'default'}`)),
    h('div', { class: 'actions' },
      open ? h('button', { type: 'button', class: 'transfer', onclick: () => openTransferDialog(c) }, '转接') : null,
      open ? h('button', { type: 'button', class: 'danger close-chat', onclick: (ev) => confirmClose(ev.currentTarget, c) }, '结束会话') : null));
  const note = p.note && !c.archived ? h('div', { class: 'internal-note', role: 'note' },
    h('strong', { title: p.from_agent_id || '' }, '内部备注 · 转接自' + (p.from_agent_name ? ' ' + p.from_agent_name : '同事')),
    h('p', {}, p.note), h('small', {}, '仅客服可见，访客看不到')) : null;
  // A re-render of the same chat keeps the reader's scroll position, and the composer (draft, focus) itself.
  const oldBox = $('.messages', pane);
  const same = pane.dataset.sid === c.sid && oldBox;
  const keepScroll = same && oldBox.scrollHeight - oldBox.scrollTop - oldBox.clientHeight > 120 ? oldBox.scrollTop : null;
  const hadFocus = document.activeElement && document.activeElement.closest('.composer');
  const msgs = h('div', { class: 'messages', 'aria-live': 'polite' });
  const typing = h('div', { class: 'typing', hidden: true }, '对方正在输入…');
  pane.dataset.sid = c.sid;
  pane.replaceChildren(head, note || '', msgs, typing, open ? composerFor(c) : h('div', { class: 'readonly' }, c.gone ? '此会话已转给其他客服' : c.archived && c.rec.status !== 'closed' ? '只读：此会话未分配给你' : '会话已结束 · 只读'));
  for (const seq of [...c.msgs.keys()].sort((a, b) => a - b)) renderMessage(c, c.msgs.get(seq));
  for (const [cmid, m] of S.outbox) if (m.sid === c.sid) msgs.append(messageEl(c, { ...m, client_msg_id: cmid, sender: 'agent', sender_id: S.me.agent_id, timestamp: new Date().toISOString() }, true));
  renderMarks(c);
  renderTyping();
  if (keepScroll === null) scrollDown(true); else msgs.scrollTop = keepScroll;
  if (hadFocus && open) $('.composer textarea', pane).focus();
  if (!same || S.shownProfile !== c.profile || !$('.profile .card')) renderProfile(c);
  S.shownProfile = c.profile;
}

const composers = new Map(); // session_id -> composer element: drafts survive re-renders and switching chats
function composerFor(c) {
  if (!composers.has(c.sid)) composers.set(c.sid, composer(c));
  for (const sid of composers.keys()) if (!isOpen(S.convs.get(sid))) composers.delete(sid);
  return composers.get(c.sid);
}

function confirmClose(btn, c) {
  if (btn.dataset.armed) {
    if (!wsSend({ type: 'close', session_id: c.sid, ref: 'close:' + c.sid })) toast('未连接到服务器，稍后再试', 'error');
    return;
  }
  btn.dataset.armed = '1';
  btn.textContent = '确认结束？';
  setTimeout(() => { if (btn.isConnected) { delete btn.dataset.armed; btn.textContent = '结束会话'; } }, 4000);
}

function scrollDown(force) {
  const box = $('.messages');
  if (!box) return;
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  if (force || near) box.scrollTop = box.scrollHeight;
}

function renderMessage(c, m) {
  const box = $('.messages');
  if (!box) return;
  let before = null;
  for (const el of box.querySelectorAll('.msg[data-seq]')) {
    const seq = +el.dataset.seq;
    if (seq === m.seq) return;
    if (seq > m.seq) { before = el; break; }
  }
  if (!before) before = box.querySelector('.msg.pending');
  box.insertBefore(messageEl(c, m, false), before);
}

function messageEl(c, m, pending) {
  if (m.sender === 'system' || m.msg_type === 'event') {
    return h('div', { class: 'msg system', dataset: { seq: m.seq, sender: 'system' } }, h('span', { class: 'bubble' }, m.content || ''));
  }
  const mine = m.sender === 'agent';
  const who = m.sender === 'user' ? visitorName(c) : m.sender === 'bot' ? '智能机器人' : m.sender_id === (S.me && S.me.agent_id) ? (S.me.name || '我') : agentName(m.sender_id);
  const meta = h('div', { class: 'meta' }, h('span', {}, who), h('span', {}, clock(m.timestamp)));
  if (m.sender === 'bot') {
    meta.append(h('span', { class: 'pill bot' }, 'BOT'));
    if (typeof m.confidence === 'number') meta.append(h('span', { class: `confidence${m.confidence < 0.7 ? ' low' : ''}`, title: '知识库匹配置信度' }, `置信度 ${Math.round(m.confidence * 100)}%`));
  }
  const bubble = h('div', { class: 'bubble' });
  fillBubble(bubble, m);
  const attrs = { class: `msg ${mine ? 'me' : m.sender}${pending ? ' pending' : ''}`, dataset: { sender: m.sender } };
  if (pending) attrs.dataset.cmid = m.client_msg_id; else attrs.dataset.seq = m.seq;
  return h('div', attrs, meta, bubble, mine ? h('div', { class: 'mark' }, pending ? '发送中…' : '') : null);
}

function fillBubble(bubble, m) {
  const att = m.attachment;
  if ((m.msg_type === 'image' || m.msg_type === 'file') && att) {
    if (m.msg_type === 'image') {
      const img = h('img', { alt: att.name || '图片', class: 'thumb' });
      blobUrl(att.thumbnail_url || att.url).then((u) => { img.src = u; }).catch(() => { img.alt = '图片加载失败'; });
      img.addEventListener('click', () => blobUrl(att.url).then((u) => window.open(u, '_blank', 'noopener')));
      bubble.append(img);
    } else {
      const a = h('a', { class: 'file', href: '#', title: '下载' }, icon('file'), h('span', {}, att.name || '文件'), h('small', {}, bytes(att.size || 0)));
      a.addEventListener('click', async (ev) => {
        ev.preventDefault();
        const u = await blobUrl(att.url);
        const dl = h('a', { href: u, download: att.name || 'file' });
        document.body.append(dl); dl.click(); dl.remove();
      });
      bubble.append(a);
    }
    if (m.content) bubble.append(h('div', { class: 'caption' }, m.content));
    return;
  }
  if (m.msg_type === 'link' && /^https?:\/\//i.test(m.content || '')) {
    bubble.append(h('a', { href: m.content, target: '_blank', rel: 'noopener noreferrer' }, m.content));
    return;
  }
  bubble.textContent = m.content || '';
}

function renderMarks(c) {
  for (const el of document.querySelectorAll('.messages .msg.me[data-seq]')) {
    const mark = $('.mark', el);
    if (mark) mark.textContent = +el.dataset.seq <= c.peerRead ? '已读' : '未读';
  }
}

function renderTyping() {
  const el = $('.typing');
  if (!el || !S.current) return;
  const c = S.convs.get(S.current.sid);
  el.hidden = !(c && S.current.live && c.typingUntil > Date.now());
}

// --- composer -------------------------------------------------------------------------------------------

function composer(c) {
  const box = h('textarea', { rows: 3, placeholder: '输入回复，Enter 发送，Shift+Enter 换行；输入 / 使用快捷回复', 'aria-label': '回复' });
  const suggest = h('ul', { class: 'suggest', hidden: true, role: 'listbox' });
  const file = h('input', { type: 'file', hidden: true, accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain' });
  let pick = 0;
  const matches = () => (S.cannedState === 'ok' ? cannedMatches(box.value) : []);
  const showSuggest = () => {
    const list = matches();
    suggest.hidden = !list.length;
    pick = Math.min(pick, Math.max(0, list.length - 1));
    suggest.replaceChildren(...list.map((cr, i) => h('li', {
      class: i === pick ? 'on' : '', role: 'option',
      onmousedown: (e) => { e.preventDefault(); insertCanned(cr); },
    }, h('code', {}, '/' + cr.shortcut.replace(/^\//, '')), h('span', {}, cr.text), cr.scope === 'agent' ? h('small', {}, '个人') : h('small', {}, '团队'))));
  };
  const insertCanned = (cr) => { box.value = cr.text; suggest.hidden = true; box.focus(); };
  box.addEventListener('input', () => {
    pick = 0;
    showSuggest();
    const now = Date.now();
    if (box.value && now - S.lastTypingSent > TYPING_EVERY_MS) { S.lastTypingSent = now; wsSend({ type: 'typing', session_id: c.sid }); }
  });
  box.addEventListener('keydown', (e) => {
    const list = matches();
    if (list.length && !suggest.hidden) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); pick = (pick + (e.key === 'ArrowDown' ? 1 : list.length - 1)) % list.length; showSuggest(); return; }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && !e.isComposing)) { e.preventDefault(); insertCanned(list[pick]); return; }
      if (e.key === 'Escape') { suggest.hidden = true; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendText(c, box); }
  });
  file.addEventListener('change', () => { if (file.files[0]) sendFile(c, file.files[0]); file.value = ''; });
  return h('div', { class: 'composer' },
    suggest,
    box,
    h('div', { class: 'composer-bar' },
      h('button', { type: 'button', class: 'ghost attach', title: '发送图片或文件', onclick: () => file.click() }, icon('clip'), '图片/文件'),
      file,
      h('span', { class: 'hint' }, ''),
      h('button', { type: 'button', class: 'primary send', onclick: () => sendText(c, box) }, '发送')));
}

function renderComposerHint() {
  const hint = $('.composer .hint');
  if (hint) hint.textContent = S.cannedState === 'missing' ? '快捷回复接口暂不可用' : S.canned.length ? `快捷回复 ${S.canned.length} 条，输入 / 调用` : '';
}

function queueSend(c, msg) {
  const cmid = uid();
  S.outbox.set(cmid, { sid: c.sid, ...msg });
  const box = $('.messages');
  if (box) box.append(messageEl(c, { ...msg, client_msg_id: cmid, sender: 'agent', sender_id: S.me.agent_id, timestamp: new Date().toISOString() }, true));
  scrollDown(true);
  // Offline, the outbox keeps it: after the reconnect and sync it goes again under the same client_msg_id.
  wsSend({ type: 'send', ref: 'send:' + cmid, session_id: c.sid, client_msg_id: cmid, ...msg });
}

function sendText(c, box) {
  const text = box.value.trim();
  if (!text) return;
  box.value = '';
  $('.suggest') && ($('.suggest').hidden = true);
  queueSend(c, { msg_type: 'text', content: text });
}

async function sendFile(c, f) {
  const form = new FormData();
  form.append('file', f, f.name);
  toast(`正在上传 ${f.name}…`);
  try {
    const up = await api('uploads', { method: 'POST', form });
    const isImage = /^image\//.test(up.content_type);
    queueSend(c, { msg_type: isImage ? 'image' : 'file', content: '', attachment_id: up.attachment_id, attachment: up });
  } catch (e) {
    toast(e.code === 'too_large' ? '文件过大' : e.code === 'unsupported_type' ? '不支持的文件类型' : e.message, 'error');
  }
}

// --- visitor panel ----------------------------------------------------------------------------------------

function kv(label, value, cls) {
  return h('div', { class: `kv ${cls || ''}` }, h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? '—' : value));
}

function tagList(tags, cls) {
  const entries = Object.entries(tags || {});
  if (!entries.length) return h('span', { class: 'muted' }, '无');
  return h('div', { class: 'tags' }, ...entries.map(([k, v]) => h('span', { class: `tag ${cls}` }, `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)));
}

let historyFor = null;
function renderProfile(c) {
  const pane = $('.profile');
  if (!pane) return;
  if (!c) { pane.replaceChildren(h('div', { class: 'placeholder small' }, '访客信息')); historyFor = null; return; }
  const p = c.profile || {};
  const v = p.visitor || {};
  const userId = v.user_id || c.rec.user_id || null;
  const past = h('ul', { class: 'past' }, h('li', { class: 'muted' }, '加载中…'));
  pane.replaceChildren(
    h('section', { class: 'card visitor-card' },
      h('div', { class: 'visitor-head' }, h('span', { class: 'avatar big' }, visitorName(c).slice(0, 1).toUpperCase()),
        h('div', {}, h('strong', { class: 'visitor-name' }, visitorName(c)), h('small', {}, userId ? '已验证用户' : '匿名访客'))),
      h('dl', {},
        kv('用户 ID', userId, 'user-id'),
        kv('访客 ID', v.visitor_id || c.rec.visitor_id),
        kv('渠道', CHANNEL_TEXT[p.channel || c.rec.channel] || p.channel || c.rec.channel),
        kv('技能组', c.rec.group || p.group),
        kv('转人工原因', REASON_TEXT[p.handoff_reason || c.rec.handoff_reason] || p.handoff_reason || c.rec.handoff_reason),
        kv('开始时间', c.rec.created_at ? clock(c.rec.created_at) : null))),
    h('section', { class: 'card' }, h('h4', {}, '标签 Tags', h('small', {}, '已验证，路由使用')), tagList(p.tags, 'trusted')),
    h('section', { class: 'card' }, h('h4', {}, '客户端标签', h('small', {}, '未验证，仅供参考')), tagList(p.client_tags, 'client')),
    h('section', { class: 'card' }, h('h4', {}, '上下文 Context'), p.context || c.rec.context ? h('pre', { class: 'context' }, p.context || c.rec.context) : h('span', { class: 'muted' }, '无')),
    h('section', { class: 'card' }, h('h4', {}, '历史会话'), past));
  const key = userId || v.visitor_id || c.rec.visitor_id;
  if (!key) { past.replaceChildren(h('li', { class: 'muted' }, '无')); return; }
  historyFor = key;
  api(`conversations?user_id=${encodeURIComponent(key)}&limit=10`).then((data) => {
    if (historyFor !== key) return;
    const rows = (data.items || []).filter((r) => r.session_id !== c.sid);
    past.replaceChildren(...(rows.length ? rows.map((r) => h('li', { onclick: () => openArchive(r.session_id), tabindex: 0 },
      h('span', {}, r.session_id), h('span', { class: `pill st-${r.status}` }, CONV_STATUS_TEXT[r.status] || r.status), h('small', {}, clock(r.created_at))))
      : [h('li', { class: 'muted' }, '没有其他会话')]));
  }).catch(() => past.replaceChildren(h('li', { class: 'muted' }, '无法加载')));
}

// --- transfer ---------------------------------------------------------------------------------------------

let agentsCache = null;
/** A colleague's name where this agent may know it (admins list agents); otherwise just 同事. */
function agentName(agentId) {
  const a = (agentsCache || []).find((x) => x.agent_id === agentId);
  return a ? a.name || a.email : '同事';
}

async function loadAgents() {
  if (!isAdmin()) return [];
  agentsCache = (await api('agents')).items || [];
  return agentsCache;
}

async function openTransferDialog(c) {
  let agents = [];
  let groups = new Set([...(S.me.groups || []), 'default', c.rec.group].filter(Boolean));
  if (isAdmin()) {
    try {
      agents = (await loadAgents()).filter((a) => a.agent_id !== S.me.agent_id);
      const gs = await api('groups');
      for (const g of gs.items || []) groups.add(g.name || g);
    } catch (e) { toast(e.message, 'error'); }
  }
  const select = h('select', { name: 'target', required: true },
    agents.length ? h('optgroup', { label: '客服 Agents' }, ...agents.map((a) => h('option', { value: 'agent:' + a.agent_id, disabled: a.status !== 'online' ? true : null },
      `${a.name || a.email} · ${STATUS_TEXT[a.status] || a.status} · ${a.load}/${a.max_concurrent}`))) : null,
    h('optgroup', { label: '技能组 Groups（进入排队）' }, ...[...groups].map((g) => h('option', { value: 'group:' + g }, g))));
  const first = [...select.options].find((o) => !o.disabled);
  if (first) first.selected = true;
  const note = h('textarea', { name: 'note', rows: 4, maxlength: 5000, placeholder: '内部备注：问题进展、已尝试的方案…（访客看不到）' });
  const err = h('p', { class: 'error', role: 'alert' });
  const dialog = h('dialog', { id: 'transfer-dialog', class: 'modal' },
    h('form', { method: 'dialog' },
      h('h3', {}, `转接会话 ${c.sid}`),
      h('label', {}, '转给', select),
      h('label', {}, '备注 Note', note),
      err,
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '取消'),
        h('button', { type: 'submit', class: 'primary' }, '确认转接'))));
  $('form', dialog).addEventListener('submit', (ev) => {
    ev.preventDefault();
    const [kind, id] = select.value.split(/:(.*)/s);
    const frame = { type: 'transfer', ref: 'transfer:' + c.sid, session_id: c.sid };
    if (kind === 'agent') frame.to_agent_id = id; else frame.to_group = id;
    if (note.value.trim()) frame.note = note.value.trim();
    if (!wsSend(frame)) { err.textContent = '未连接到服务器'; return; }
    dialog.close();
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  note.focus();
}

// --- canned responses dialog --------------------------------------------------------------------------------

async function openCannedDialog() {
  await loadCanned();
  const list = h('ul', { class: 'canned-list' });
  const err = h('p', { class: 'error', role: 'alert' });
  const draw = () => {
    if (S.cannedState === 'missing') { list.replaceChildren(h('li', { class: 'muted' }, '服务器尚未提供 /api/v1/canned-responses 接口')); return; }
    list.replaceChildren(...(S.canned.length ? S.canned.map((cr) => h('li', {},
      h('code', {}, '/' + cr.shortcut.replace(/^\//, '')), h('span', { class: 'text' }, cr.text), h('small', {}, cr.scope === 'app' ? '团队' : '个人'),
      h('button', { type: 'button', class: 'ghost small', onclick: async () => {
        try { await api(`canned-responses/${encodeURIComponent(cr.id)}`, { method: 'DELETE' }); await loadCanned(); draw(); renderComposerHint(); } catch (e) { err.textContent = e.message; }
      } }, '删除'))) : [h('li', { class: 'muted' }, '还没有快捷回复')]));
  };
  draw();
  const form = h('form', { class: 'canned-form' },
    h('input', { name: 'shortcut', required: true, placeholder: '快捷词，如 hi', maxlength: 50 }),
    h('input', { name: 'text', required: true, placeholder: '回复内容', maxlength: 5000 }),
    h('select', { name: 'scope' }, h('option', { value: 'agent' }, '个人'), isAdmin() ? h('option', { value: 'app' }, '团队') : null),
    h('button', { type: 'submit', class: 'primary' }, '添加'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api('canned-responses', { method: 'POST', body: { shortcut: fd.get('shortcut').trim().replace(/^\//, ''), text: fd.get('text').trim(), scope: fd.get('scope') } });
      form.reset(); err.textContent = '';
      await loadCanned(); draw(); renderComposerHint();
    } catch (e) { err.textContent = e.message; }
  });
  const dialog = h('dialog', { id: 'canned-dialog', class: 'modal wide' },
    h('h3', {}, '快捷回复 Canned responses'),
    h('p', { class: 'muted' }, '在输入框中键入 /快捷词，按 Tab 或 Enter 插入。'),
    list, S.cannedState === 'missing' ? null : form, err,
    h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '关闭')));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

// --- dashboard ------------------------------------------------------------------------------------------------

const DAY = 86400000;
function isoDay(d) { return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())).toISOString(); }

const dash = { from: null, to: null, data: null, roi: { perChat: 15, monthly: 8000, revenue: 0 } };

function renderDashboard() {
  const root = $('.dashboard');
  const today = new Date();
  if (!dash.from) { dash.to = isoDay(new Date(today.getTime() + DAY)); dash.from = isoDay(new Date(today.getTime() - 13 * DAY)); }
  const fromIn = h('input', { type: 'date', name: 'from', value: dash.from.slice(0, 10) });
  const toIn = h('input', { type: 'date', name: 'to', value: new Date(Date.parse(dash.to) - DAY).toISOString().slice(0, 10) });
  const body = h('div', { class: 'dash-body' }, h('p', { class: 'muted' }, '加载中…'));
  root.replaceChildren(
    h('div', { class: 'dash-head' },
      h('h2', {}, '数据看板 ', h('small', {}, 'Dashboard')),
      h('form', { class: 'range', onsubmit: (e) => {
        e.preventDefault();
        dash.from = new Date(fromIn.value + 'T00:00:00Z').toISOString();
        dash.to = new Date(Date.parse(toIn.value + 'T00:00:00Z') + DAY).toISOString();
        loadStats(body);
      } }, h('label', {}, '从', fromIn), h('label', {}, '到', toIn), h('button', { type: 'submit', class: 'primary' }, '查询'),
      h('button', { type: 'button', class: 'ghost csv', onclick: downloadCsv }, '导出 CSV'))),
    body);
  loadStats(body);
}

async function loadStats(body) {
  try {
    dash.data = await api(`stats?from=${encodeURIComponent(dash.from)}&to=${encodeURIComponent(dash.to)}&bucket=day`);
    drawStats(body, dash.data);
  } catch (e) {
    dash.data = null;
    body.replaceChildren(h('div', { class: 'card empty-state' }, e.status === 404 ? '统计接口 GET /api/v1/stats 暂不可用（服务器尚未提供）' : '无法加载统计：' + e.message));
  }
}

const pct = (x) => `${((x || 0) * 100).toFixed(1)}%`;
const num = (x) => (x || 0).toLocaleString('zh-CN');

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
    h('section', { class: 'card' }, h('h4', {}, '按客服 By agent'), breakdown(d.by_agent || {}, '客服', agentsCache)));
  if (isAdmin() && !agentsCache) loadAgents().then(() => { if (dash.data === d && S.view === 'dashboard') drawStats(body, d); }).catch(() => {});
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
    const input = h('input', { type: 'number', min: 0, step: 'any', name: key, value: dash.roi[key] });
    input.addEventListener('input', () => { dash.roi[key] = Math.max(0, +input.value || 0); compute(); });
    return h('label', {}, label, input);
  };
  const compute = () => {
    const saved = (d.bot_resolved || 0) * dash.roi.perChat;
    const cost = dash.roi.monthly;
    const roi = cost > 0 ? ((saved + dash.roi.revenue) / cost) * 100 : null;
    out.replaceChildren(
      h('div', {}, h('small', {}, '节省成本'), h('strong', {}, `¥${num(Math.round(saved))}`), h('span', {}, `${num(d.bot_resolved)} 个机器人解决 × ¥${dash.roi.perChat}`)),
      h('div', {}, h('small', {}, 'ROI'), h('strong', { class: 'roi-value' }, roi === null ? '—' : `${roi.toFixed(1)}%`), h('span', {}, '(节省成本 + 新增收入) / 成本')));
  };
  compute();
  return h('section', { class: 'card roi' }, h('h4', {}, 'ROI 计算器'),
    h('div', { class: 'roi-in' }, field('perChat', '人工单次接待成本 (¥)'), field('monthly', '客服月成本 (¥)'), field('revenue', '新增收入 (¥)')), out);
}

function downloadCsv() {
  const d = dash.data;
  if (!d) { toast('没有可导出的数据', 'error'); return; }
  const cols = ['sessions', 'messages', 'bot_sessions', 'bot_resolved', 'bot_resolution_rate', 'handoffs', 'abandoned'];
  const stat = ['wait_seconds', 'first_response_seconds', 'handle_seconds'];
  const head = ['scope', 'key', ...cols, ...stat.flatMap((k) => ['avg', 'p50', 'p90', 'max'].map((q) => `${k}_${q}`))];
  const row = (scope, key, v) => [scope, key, ...cols.map((c) => v[c] ?? 0), ...stat.flatMap((k) => ['avg', 'p50', 'p90', 'max'].map((q) => (v[k] || {})[q] ?? 0))];
  const rows = [row('total', `${dash.from}/${dash.to}`, d)];
  for (const p of d.series || []) rows.push(row('day', p.start, p));
  for (const [k, v] of Object.entries(d.by_group || {})) rows.push(row('group', k, v));
  for (const [k, v] of Object.entries(d.by_agent || {})) rows.push(row('agent', k, v));
  const cell = (x) => { const t = String(x); return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t; };
  const csv = '\ufeff' + [head, ...rows].map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
  const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: `kefu-stats-${dash.from.slice(0, 10)}-${dash.to.slice(0, 10)}.csv` });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- boot -----------------------------------------------------------------------------------------------------

addEventListener('hashchange', route);
addEventListener('offline', () => { if (S.token) { dropSocket(); setConn('offline'); } });
addEventListener('online', () => { if (S.token) { S.attempts = 0; dropSocket(); connect(); } });
document.addEventListener('visibilitychange', markRead);
addEventListener('focus', markRead);
setInterval(() => { tickWaits(); renderTyping(); }, 1000);

window.KefuConsole = { state: S }; // for debugging and tests: read-only use

if (S.token) start(); else renderLogin();
