// kefu agent console (客服工作台): one ES module, no framework, no build step.
// It speaks only the public contract: /api/v1 over HTTP and /ws/agent over WebSocket.
// Text from visitors and agents is always inserted as text (textContent / text nodes), never as HTML.

const API = '/api/v1';
const TOKEN_KEY = 'kefu.console.token';
const PROFILE_KEY = 'kefu.console.profiles';
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 5000;
const QUEUE_REFRESH_MS = 60000; // a fallback only: queue_changed frames refresh the queue at once
const HISTORY_PAGE = 50; // messages per page of history (on opening a chat, and per scroll to the top)
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
    notes: new Map(), notesState: null, // note_id -> internal note; null | 'loading' | 'ok' | 'error'
    loadingOlder: false, olderError: null,
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
  // A 401 anywhere means the token is gone (expired, or logged out elsewhere): back to the login screen.
  if (r.status === 401 && S.token && !/auth\/(login|logout)$/.test(path)) { logout('登录已过期，请重新登录'); throw new ApiError(401, 'unauthorized', '登录已过期'); }
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
    case 'note': return onNote(f);
    case 'queue_changed': return onQueueChanged(f);
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
    c.notesState = null; // notes written while this console was away are fetched again when the chat is shown
    if (rec.visitor !== undefined) profileFromRecord(c, rec);
  }
  // Chats we held that are no longer ours were closed or transferred while we were away.
  for (const c of S.convs.values()) {
    if (!open.has(c.sid) && isOpen(c)) refreshClosed(c);
  }
  const wanted = /^#\/c\/(.+)$/.exec(location.hash);
  if (!S.current && wanted && open.has(decodeURIComponent(wanted[1]))) S.current = { sid: decodeURIComponent(wanted[1]), live: true };
  setConn(open.size ? 'syncing' : 'live');
  for (const sid of open) loadAndSync(conv(sid));
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
  if (S.view === 'admin' && $('.admin-body[data-waiting]')) renderAdmin();
}

/** The `ready` frame lists an agent's chats with the same visitor keys as `assigned`: the panel survives a reload. */
function profileFromRecord(c, rec) {
  const prev = c.profile || {};
  c.profile = {
    visitor: rec.visitor || prev.visitor || null, tags: rec.tags || {}, client_tags: rec.client_tags || {},
    context: rec.context ?? prev.context, channel: rec.channel ?? prev.channel, group: rec.group ?? prev.group,
    handoff_reason: rec.handoff_reason ?? prev.handoff_reason,
    note: prev.note || null, from_agent_id: prev.from_agent_id || null, from_agent_name: prev.from_agent_name || null,
  };
  saveProfile(c.sid, c.profile);
}

/**
 * A chat this console knows nothing of yet starts from its last page of history (HTTP); then the socket's `sync`
 * replays whatever came after it. A chat it already holds just syncs from its last seq.
 */
async function loadAndSync(c) {
  const ws = S.ws;
  S.syncing.add(c.sid);
  if (!c.lastSeq && (c.rec.last_seq || 0) > 0) await loadTail(c);
  if (!ws || S.ws !== ws || !S.syncing.has(c.sid)) return; // the socket dropped meanwhile: the next ready starts over
  startSync(c);
}

async function loadTail(c) {
  const top = c.rec.last_seq || 0;
  try {
    const page = await api(`conversations/${encodeURIComponent(c.sid)}/messages?before_seq=${top + 1}&limit=${HISTORY_PAGE}`);
    for (const m of page.items || []) addMessage(c, { ...m, session_id: c.sid });
  } catch (e) {
    if (e.status === 401) return;
    // Without the history endpoint the socket replays the last page instead; older pages then cannot be loaded.
    c.lastSeq = Math.max(c.lastSeq, top - HISTORY_PAGE);
    c.olderError = e.message;
  }
}

const lowestSeq = (c) => { let low = 0; for (const seq of c.msgs.keys()) if (!low || seq < low) low = seq; return low; };
/** seq starts at 1 with no gaps, so a chat whose lowest loaded seq is above 1 has older messages to load. */
const olderExists = (c) => !c.archived && lowestSeq(c) > 1;

function startSync(c) {
  S.syncing.add(c.sid);
  if (!S.ws) return;
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
  if (f.agent) learnName(f.agent.agent_id, f.agent.name);
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
    from_agent_name: (f.from_agent && f.from_agent.name) || null,
  };
  saveProfile(c.sid, c.profile);
  c.notesState = null; // notes written before this chat came here (e.g. the transfer's) are read from the API
  if (f.from_agent) learnName(f.from_agent.agent_id, f.from_agent.name);
  for (const m of f.transcript || []) addMessage(c, m);
  if (S.conn === 'live' || S.conn === 'syncing') {
    if (!c.lastSeq && (f.last_seq || 0) > 0) { c.rec.last_seq = f.last_seq; loadAndSync(c); } else startSync(c);
  }
  if (c.profile.from_agent_id && !c.profile.from_agent_name && isAdmin()) resolveAgentName(c);
  if (fresh) notifyAssigned(c);
  const idle = !S.current || !S.current.live || !isOpen(S.convs.get(S.current.sid));
  if (S.view === 'admin') { // an admin mid-form is not pulled away: the chat waits in 会话
    if (idle) S.current = { sid: c.sid, live: true };
    if (fresh) toast(`新会话：${visitorName(c)}（在“会话”中查看）`, 'accent');
  } else if (idle) openChat(c.sid);
  else if (fresh) toast(`新会话：${visitorName(c)}${f.note ? '（转接，附内部备注）' : ''}`, 'accent');
  refreshQueueSoon();
  renderAll();
}

async function resolveAgentName(c) {
  const agents = await loadAgents().catch(() => []);
  const a = agents.find((x) => x.agent_id === c.profile.from_agent_id);
  if (a) { c.profile.from_agent_name = a.name || a.email; saveProfile(c.sid, c.profile); renderChat(); }
}

function onNote(f) {
  learnName(f.agent_id, f.agent_name);
  const c = S.convs.get(f.session_id);
  if (!c || !f.note_id || c.notes.has(f.note_id)) return;
  c.notes.set(f.note_id, f);
  const shown = S.current && S.current.live && S.current.sid === c.sid;
  if (shown) redrawTimeline(c, f.agent_id === (S.me && S.me.agent_id));
  else if (f.agent_id !== (S.me && S.me.agent_id)) toast(`${f.agent_name || '同事'} 在会话 ${c.sid} 添加了内部备注`, 'accent');
}

/** The app's queue changed (a chat queued, taken or abandoned): the queue list is fetched again, debounced. */
function onQueueChanged() {
  refreshQueueSoon();
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
  if (!S.token) return;
  queueTimer = setTimeout(refreshQueue, QUEUE_REFRESH_MS);
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

/** 退出: the server revokes the token (POST /auth/logout), then this tab forgets it. */
async function signOut() {
  if (!S.token) return;
  const btn = $('.topbar .logout');
  if (btn) btn.disabled = true;
  // The server closes this token's sockets (4401) on logout: drop ours first so that is not taken for an expiry.
  dropSocket();
  clearTimeout(S.retryTimer);
  let problem = '';
  try {
    await api('auth/logout', { method: 'POST' });
  } catch (e) {
    // 401: the token was already dead. Anything else: it may still be valid until it expires; say so.
    if (e.status !== 401) problem = `已在本机退出，但服务器未确认注销：${e.message}`;
  }
  logout(problem);
}

function logout(reason) {
  if (!S.token && !S.me) { if (reason) renderLogin(reason); return; } // already logged out
  S.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PROFILE_KEY);
  dropSocket();
  clearTimeout(S.retryTimer);
  clearTimeout(queueTimer);
  clearTimeout(queueSoon);
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
        h('a', { href: '#/dashboard', dataset: { view: 'dashboard' } }, '数据看板'),
        h('a', { href: '#/admin', dataset: { view: 'admin' }, hidden: true }, '管理')),
      h('div', { class: 'spacer' }),
      h('span', { class: 'conn-dot', dataset: { state: 'connecting' } }),
      h('div', { class: 'status-switch', role: 'group', 'aria-label': '我的状态' },
        ...['online', 'busy', 'offline'].map((st) => h('button', { type: 'button', dataset: { status: st }, onclick: () => setStatus(st) }, STATUS_TEXT[st]))),
      h('button', { type: 'button', class: 'ghost alerts', onclick: enableAlerts, title: '浏览器通知与提示音' }, '开启提醒'),
      h('button', { type: 'button', class: 'ghost canned-open', onclick: openCannedDialog }, '快捷回复'),
      h('div', { class: 'whoami' }, h('span', { class: 'me-status' }), h('span', { class: 'me-name' })),
      h('button', { type: 'button', class: 'ghost logout', onclick: signOut }, '退出')),
    h('div', { class: 'banner', hidden: true, role: 'status' }),
    h('main', { class: 'workspace' },
      h('aside', { class: 'sidebar' },
        h('div', { class: 'tabs', role: 'tablist' }),
        h('ul', { class: 'conv-list' })),
      h('section', { class: 'chat' }),
      h('aside', { class: 'profile' })),
    h('main', { class: 'dashboard', hidden: true }),
    h('main', { class: 'admin', hidden: true }),
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
  const view = location.hash.startsWith('#/dashboard') ? 'dashboard' : location.hash.startsWith('#/admin') ? 'admin' : 'chat';
  S.view = view;
  const ws = $('.workspace');
  if (!ws) return;
  ws.hidden = view !== 'chat';
  $('.dashboard').hidden = view !== 'dashboard';
  $('.admin').hidden = view !== 'admin';
  for (const a of document.querySelectorAll('.nav a')) a.classList.toggle('active', a.dataset.view === view);
  if (view === 'dashboard') renderDashboard();
  if (view === 'admin') renderAdmin();
  if (view === 'chat' && S.me) renderChat(); // drawn while hidden, it scrolls right only once shown
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
  const adminLink = $('.nav a[data-view=admin]');
  if (adminLink) adminLink.hidden = !isAdmin();
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
  S.archiveNotes = [];
  renderList();
  renderChat();
  try {
    const [record, notes] = await Promise.all([
      api(`conversations/${encodeURIComponent(sid)}`),
      api(`conversations/${encodeURIComponent(sid)}/notes`).catch(() => ({ items: [] })),
    ]);
    S.archive = record;
    S.archiveNotes = notes.items || [];
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
  for (const n of S.archiveNotes || []) c.notes.set(n.note_id, n);
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
    h('p', { title: p.note }, p.note), h('small', {}, '仅客服可见')) : null;
  // A re-render of the same chat keeps the reader's scroll position, and the composer (draft, focus) itself.
  const oldBox = $('.messages', pane);
  const same = pane.dataset.sid === c.sid && oldBox;
  const keepScroll = same && oldBox.scrollHeight - oldBox.scrollTop - oldBox.clientHeight > 120 ? oldBox.scrollTop : null;
  const hadFocus = document.activeElement && document.activeElement.closest('.composer');
  const msgs = h('div', { class: 'messages', 'aria-live': 'polite' });
  msgs.addEventListener('scroll', () => { if (msgs.scrollTop < 80) loadOlder(c); }, { passive: true });
  const typing = h('div', { class: 'typing', hidden: true }, '对方正在输入…');
  pane.dataset.sid = c.sid;
  pane.replaceChildren(head, note || '', msgs, typing, open ? composerFor(c) : h('div', { class: 'readonly' }, c.gone ? '此会话已转给其他客服' : c.archived && c.rec.status !== 'closed' ? '只读：此会话未分配给你' : '会话已结束 · 只读'));
  fillTimeline(c, msgs);
  if (!c.archived) ensureNotes(c);
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

// --- timeline: messages by seq, internal notes by time, older pages on scrolling up ------------------------

/** Messages in seq order with the notes placed by time; notes older than the loaded page wait for their page. */
function timeline(c) {
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  const from = msgs.length && olderExists(c) ? Date.parse(msgs[0].timestamp) : -Infinity;
  const notes = [...c.notes.values()].filter((n) => Date.parse(n.created_at) >= from)
    .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  const out = [];
  let i = 0;
  for (const m of msgs) {
    const t = Date.parse(m.timestamp);
    while (i < notes.length && Date.parse(notes[i].created_at) < t) out.push(notes[i++]);
    out.push(m);
  }
  return out.concat(notes.slice(i));
}

function fillTimeline(c, box) {
  const items = timeline(c).map((x) => (x.note_id ? noteEl(x) : messageEl(c, x, false)));
  const pending = [];
  if (!c.archived) {
    for (const [cmid, m] of S.outbox) {
      if (m.sid === c.sid) pending.push(messageEl(c, { ...m, client_msg_id: cmid, sender: 'agent', sender_id: S.me.agent_id, timestamp: new Date().toISOString() }, true));
    }
  }
  box.replaceChildren(historyTop(c), ...items, ...pending);
}

function historyTop(c) {
  if (!c.msgs.size) return h('div', { class: 'history-top', hidden: true });
  if (c.loadingOlder) return h('div', { class: 'history-top loading' }, '正在加载更早的消息…');
  if (olderExists(c)) {
    return h('div', { class: 'history-top' },
      c.olderError ? h('span', { class: 'error' }, '历史消息加载失败：' + c.olderError) : null,
      h('button', { type: 'button', class: 'ghost small load-older', onclick: () => loadOlder(c, true) }, '加载更早的消息'));
  }
  return h('div', { class: 'history-top start' }, '— 会话开始 —');
}

/** Rebuild the shown chat's timeline in place; `toBottom` scrolls to the end, otherwise the view stays put. */
function redrawTimeline(c, toBottom) {
  const box = $('.messages');
  if (!box || $('.chat').dataset.sid !== c.sid) return;
  const fromBottom = box.scrollHeight - box.scrollTop;
  const near = fromBottom - box.clientHeight < 120;
  fillTimeline(c, box);
  renderMarks(c);
  if (toBottom || near) box.scrollTop = box.scrollHeight;
  else box.scrollTop = box.scrollHeight - fromBottom;
}

/** The page of messages just above the oldest one shown; the reader's place stays where it was. */
async function loadOlder(c, clicked) {
  if (c.loadingOlder || !olderExists(c) || (c.olderError && !clicked)) return;
  c.loadingOlder = true;
  c.olderError = null;
  const top = $('.messages .history-top');
  if (top && $('.chat').dataset.sid === c.sid) top.replaceWith(historyTop(c));
  try {
    const page = await api(`conversations/${encodeURIComponent(c.sid)}/messages?before_seq=${lowestSeq(c)}&limit=${HISTORY_PAGE}`);
    for (const m of page.items || []) addMessage(c, { ...m, session_id: c.sid });
  } catch (e) {
    c.olderError = e.message;
  } finally {
    c.loadingOlder = false;
  }
  redrawTimeline(c, false);
}

async function ensureNotes(c) {
  if (c.notesState) return; // loading, loaded, or failed (tried again after the next ready or assigned)
  c.notesState = 'loading';
  try {
    const data = await api(`conversations/${encodeURIComponent(c.sid)}/notes`);
    for (const n of data.items || []) { learnName(n.agent_id, n.agent_name); if (!c.notes.has(n.note_id)) c.notes.set(n.note_id, n); }
    c.notesState = 'ok';
    redrawTimeline(c, false);
  } catch (e) {
    c.notesState = 'error';
    if (e.status !== 401) toast('无法加载内部备注：' + e.message, 'error');
  }
}

function noteEl(n) {
  const transfer = n.kind === 'transfer';
  return h('div', { class: `note-item${transfer ? ' transfer' : ''}`, role: 'note', dataset: { noteId: n.note_id, kind: n.kind || 'note' } },
    h('div', { class: 'note-head' },
      h('strong', {}, transfer ? '转接备注' : '内部备注'),
      h('span', { class: 'note-author' }, n.agent_name || agentName(n.agent_id)),
      h('span', {}, clock(n.created_at)),
      h('small', {}, '仅客服可见，访客看不到')),
    h('p', { class: 'note-text' }, n.content || ''));
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

const REPLY_HINT = '输入回复，Enter 发送，Shift+Enter 换行；输入 / 使用快捷回复';
const NOTE_HINT = '写内部备注，Enter 保存 —— 仅客服可见，访客看不到';

function composer(c) {
  const box = h('textarea', { rows: 3, placeholder: REPLY_HINT, 'aria-label': '回复' });
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
  const noting = () => wrap.dataset.mode === 'note';
  const submit = () => (noting() ? sendNote(c, box, wrap) : sendText(c, box));
  box.addEventListener('input', () => {
    pick = 0;
    showSuggest();
    const now = Date.now();
    // The visitor sees "typing" only for replies: writing a note is not something they hear about.
    if (!noting() && box.value && now - S.lastTypingSent > TYPING_EVERY_MS) { S.lastTypingSent = now; wsSend({ type: 'typing', session_id: c.sid }); }
  });
  box.addEventListener('keydown', (e) => {
    const list = matches();
    if (list.length && !suggest.hidden) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); pick = (pick + (e.key === 'ArrowDown' ? 1 : list.length - 1)) % list.length; showSuggest(); return; }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && !e.isComposing)) { e.preventDefault(); insertCanned(list[pick]); return; }
      if (e.key === 'Escape') { suggest.hidden = true; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  file.addEventListener('change', () => { if (file.files[0]) sendFile(c, file.files[0]); file.value = ''; });
  const attach = h('button', { type: 'button', class: 'ghost attach', title: '发送图片或文件', onclick: () => file.click() }, icon('clip'), '图片/文件');
  const send = h('button', { type: 'button', class: 'primary send', onclick: submit }, '发送');
  const modeButton = (mode, label) => h('button', {
    type: 'button', role: 'tab', class: `mode${mode === 'reply' ? ' on' : ''}`, dataset: { mode }, 'aria-selected': mode === 'reply' ? 'true' : 'false',
    onclick: () => setMode(mode),
  }, label);
  const modes = h('div', { class: 'composer-modes', role: 'tablist', 'aria-label': '回复或内部备注' },
    modeButton('reply', '回复访客'), modeButton('note', '内部备注'));
  const setMode = (mode) => {
    wrap.dataset.mode = mode;
    wrap.classList.toggle('note-mode', mode === 'note');
    for (const b of modes.children) { b.classList.toggle('on', b.dataset.mode === mode); b.setAttribute('aria-selected', String(b.dataset.mode === mode)); }
    box.placeholder = mode === 'note' ? NOTE_HINT : REPLY_HINT;
    box.setAttribute('aria-label', mode === 'note' ? '内部备注' : '回复');
    send.textContent = mode === 'note' ? '保存备注' : '发送';
    attach.hidden = mode === 'note';
    const err = $('.note-error', wrap);
    if (err) err.textContent = '';
    box.focus();
  };
  const wrap = h('div', { class: 'composer', dataset: { mode: 'reply' } },
    suggest,
    modes,
    box,
    h('div', { class: 'composer-bar' },
      attach,
      file,
      h('span', { class: 'hint' }, ''),
      h('span', { class: 'error note-error', role: 'alert' }),
      send));
  return wrap;
}

/** An internal note goes over HTTP, never as a message: it has no seq and never reaches the visitor. */
async function sendNote(c, box, wrap) {
  const text = box.value.trim();
  if (!text || wrap.dataset.busy) return;
  const err = $('.note-error', wrap);
  wrap.dataset.busy = '1';
  err.textContent = '';
  try {
    const n = await api(`conversations/${encodeURIComponent(c.sid)}/notes`, { method: 'POST', body: { content: text } });
    if (box.value.trim() === text) box.value = '';
    if (n && n.note_id && !c.notes.has(n.note_id)) { c.notes.set(n.note_id, n); redrawTimeline(c, true); }
  } catch (e) {
    err.textContent = '备注未保存：' + e.message; // the text stays in the box
  } finally {
    delete wrap.dataset.busy;
  }
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
  return a ? a.name || a.email : knownNames.get(agentId) || '同事';
}

/** Colleagues' names as frames and notes mention them (agents who are not admins cannot list agents). */
const knownNames = new Map();
function learnName(agentId, name) { if (agentId && name) knownNames.set(agentId, name); }

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

// --- administration (admins only): agents, groups, routing rules, knowledge base, API keys, webhooks --------------

const ADMIN_PAGES = [
  ['agents', '客服', 'Agents'], ['groups', '技能组', 'Groups'], ['routing', '路由规则', 'Routing rules'],
  ['kb', '知识库', 'Knowledge base'], ['api-keys', 'API 密钥', 'API keys'], ['webhooks', 'Webhooks', 'Webhooks'],
];
const WEBHOOK_EVENTS = [
  'conversation.created', 'conversation.queued', 'conversation.assigned', 'conversation.transferred',
  'conversation.handoff', 'conversation.closed', 'message.created',
];
const RULE_OPS = ['==', '!=', '>', '>=', '<', '<=', 'in', 'contains'];
const ROLE_TEXT = { admin: '管理员', agent: '客服' };
const DELIVERY_TEXT = { pending: '待投递', delivered: '已送达', failed: '失败' };
const adm = { groups: [], kbCursors: [null], webhook: null };

function stamp(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** An API error as the server worded it, with its code; never swallowed. */
function fail(box, e) {
  const code = e && e.code && !/^http_/.test(e.code) ? e.code : null;
  box.replaceChildren((e && e.message) || String(e), code ? h('code', { class: 'err-code' }, code) : '');
}

const alertBox = (cls = '') => h('p', { class: `error ${cls}`.trim(), role: 'alert' });
const field = (label, input, hint) => h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'hint' }, hint) : null);

function pageHead(zh, en, ...actions) {
  return h('div', { class: 'page-head' }, h('h2', {}, zh, ' ', h('small', {}, en)), h('div', { class: 'page-actions' }, ...actions));
}

/** A button that asks for a second click within 4 s before it does something destructive. */
function confirmButton(label, cls, action) {
  const btn = h('button', { type: 'button', class: `small ${cls}` }, label);
  btn.addEventListener('click', async () => {
    if (!btn.dataset.armed) {
      btn.dataset.armed = '1';
      btn.textContent = '确认？';
      setTimeout(() => { if (btn.isConnected && btn.dataset.armed) { delete btn.dataset.armed; btn.textContent = label; } }, 4000);
      return;
    }
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; }
  });
  return btn;
}

/** A modal form; `onSubmit(formData, form)` may throw (an API error or a plain Error): shown in the dialog. */
function formDialog(id, title, fields, submitText, onSubmit, wide) {
  const err = alertBox();
  const form = h('form', { novalidate: false }, h('h3', {}, title), ...fields, err,
    h('div', { class: 'buttons' },
      h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '取消'),
      h('button', { type: 'submit', class: 'primary' }, submitText)));
  const dialog = h('dialog', { id, class: `modal${wide ? ' wide' : ''}` }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('button[type=submit]', form);
    btn.disabled = true;
    err.textContent = '';
    try {
      await onSubmit(new FormData(form), form);
      dialog.close();
    } catch (e) {
      fail(err, e);
    } finally {
      btn.disabled = false;
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

function table(cls, heads, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted empty-row' }, empty);
  return h('table', { class: `table ${cls}` }, h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', {}, t)))), h('tbody', {}, ...rows));
}

function renderAdmin() {
  const root = $('.admin');
  if (!root) return;
  const m = /^#\/admin\/?([\w-]*)/.exec(location.hash);
  const page = ADMIN_PAGES.some(([k]) => k === (m && m[1])) ? m[1] : 'agents';
  const body = h('section', { class: 'admin-body', dataset: { page } });
  root.replaceChildren(
    h('nav', { class: 'admin-nav', 'aria-label': '管理' },
      ...ADMIN_PAGES.map(([k, zh, en]) => h('a', { href: `#/admin/${k}`, class: k === page ? 'active' : '', dataset: { page: k } }, zh, h('small', {}, en)))),
    body);
  if (!S.me || !S.me.role) { body.dataset.waiting = '1'; body.append(h('p', { class: 'muted' }, '加载中…')); return; }
  if (!isAdmin()) { body.append(h('div', { class: 'card empty-state' }, '仅管理员可以使用管理页面')); return; }
  const pages = { agents: adminAgents, groups: adminGroups, routing: adminRouting, kb: adminKb, 'api-keys': adminKeys, webhooks: adminWebhooks };
  pages[page](body);
}

async function loadGroups() {
  adm.groups = (await api('groups')).items || [];
  return adm.groups;
}

// --- agents ---

function adminAgents(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      const [agents] = await Promise.all([api('agents'), loadGroups()]);
      agentsCache = agents.items || [];
      err.textContent = '';
      list.replaceChildren(table('agents-table', ['姓名', '邮箱', '角色', '技能组', '级别', '最大并发', '状态', '接待中', ''],
        agentsCache.map((a) => h('tr', { dataset: { agentId: a.agent_id, email: a.email } },
          h('td', { class: 'name' }, a.name || '—'), h('td', {}, a.email), h('td', {}, ROLE_TEXT[a.role] || a.role),
          h('td', {}, h('div', { class: 'tags' }, ...(a.groups || []).map((g) => h('span', { class: 'tag client' }, g)))),
          h('td', { class: 'level' }, String(a.level)), h('td', { class: 'max' }, String(a.max_concurrent)),
          h('td', {}, h('span', { class: `me-status`, dataset: { status: a.status } }, STATUS_TEXT[a.status] || a.status)),
          h('td', {}, String(a.load ?? 0)),
          h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'small edit', onclick: () => agentDialog(a, reload) }, '编辑')))),
        '还没有客服'));
    } catch (e) { fail(err, e); }
  };
  body.replaceChildren(
    pageHead('客服', 'Agents', h('button', { type: 'button', class: 'primary add-agent', onclick: () => agentDialog(null, reload) }, '添加客服')),
    err, list);
  reload();
}

/** Checkboxes for the app's groups plus a box for new ones (created on save). */
function groupPicker(selected) {
  const names = [...new Set([...adm.groups.map((g) => g.name), ...selected, 'default'])];
  const extra = h('input', { name: 'new_groups', placeholder: '新技能组，逗号分隔（保存时创建）' });
  const el = h('div', { class: 'group-picker' },
    h('div', { class: 'checks' }, ...names.map((g) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'groups', value: g, checked: selected.includes(g) }), g))),
    extra);
  const value = () => [...new Set([
    ...[...el.querySelectorAll('input[name=groups]:checked')].map((i) => i.value),
    ...extra.value.split(/[,，]/).map((x) => x.trim()).filter(Boolean),
  ])];
  return { el, value };
}

function agentDialog(agent, done) {
  const isNew = !agent;
  const groups = groupPicker(agent ? agent.groups || [] : ['default']);
  const role = h('select', { name: 'role' }, ...['agent', 'admin'].map((r) => h('option', { value: r, selected: (agent ? agent.role : 'agent') === r }, `${ROLE_TEXT[r]} (${r})`)));
  formDialog('agent-dialog', isNew ? '添加客服' : `编辑客服 · ${agent.name || agent.email}`, [
    isNew ? field('邮箱 Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'off' })) : h('p', { class: 'muted' }, agent.email),
    field(isNew ? '初始密码 Password' : '重置密码（留空不改）', h('input', { name: 'password', type: 'password', minlength: 8, required: isNew, autocomplete: 'new-password' }), '至少 8 个字符'),
    field('姓名 Name', h('input', { name: 'name', value: agent ? agent.name || '' : '', maxlength: 200, autofocus: !isNew })),
    field('角色 Role', role),
    h('div', { class: 'row2' },
      field('级别 Level', h('input', { name: 'level', type: 'number', min: 0, max: 1000, step: 1, required: true, value: agent ? agent.level : 1 }), '越高越资深；规则可要求最低级别'),
      field('最大并发 Max concurrent', h('input', { name: 'max_concurrent', type: 'number', min: 1, max: 1000, step: 1, required: true, value: agent ? agent.max_concurrent : 5 }))),
    field('技能组 Groups', groups.el),
  ], isNew ? '添加' : '保存', async (fd) => {
    const body = { role: fd.get('role'), level: Number(fd.get('level')), max_concurrent: Number(fd.get('max_concurrent')), groups: groups.value() };
    const name = String(fd.get('name') || '').trim();
    if (name) body.name = name;
    if (fd.get('password')) body.password = fd.get('password');
    if (isNew) {
      body.email = String(fd.get('email')).trim();
      await api('agents', { method: 'POST', body });
      toast(`已添加客服 ${name || body.email}`);
    } else {
      await api(`agents/${encodeURIComponent(agent.agent_id)}`, { method: 'PUT', body });
      toast('已保存');
    }
    await done();
  });
}

// --- groups ---

function adminGroups(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      await loadGroups();
      err.textContent = '';
      list.replaceChildren(table('groups-table', ['名称', '说明', '客服数', '创建时间'],
        adm.groups.map((g) => h('tr', { dataset: { group: g.name } }, h('td', { class: 'name' }, g.name), h('td', {}, g.description || '—'),
          h('td', {}, String(g.agent_count)), h('td', {}, stamp(g.created_at)))), '还没有技能组'));
    } catch (e) { fail(err, e); }
  };
  const form = h('form', { class: 'inline-form group-form' },
    h('input', { name: 'name', required: true, maxlength: 100, placeholder: '组名，如 vip、售后' }),
    h('input', { name: 'description', maxlength: 500, placeholder: '说明（可选）' }),
    h('button', { type: 'submit', class: 'primary' }, '添加技能组'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api('groups', { method: 'POST', body: { name: String(fd.get('name')).trim(), description: String(fd.get('description') || '').trim() } });
      form.reset();
      await reload();
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('技能组', 'Groups'), h('div', { class: 'card' }, form), err, list);
  reload();
}

// --- routing rules ---

/** A condition's value as typed: numbers, true/false/null and JSON stay typed; `in` takes a list. */
function parseValue(text, op) {
  const t = String(text).trim();
  const scalar = (x) => {
    if (/^-?\d+(\.\d+)?$/.test(x)) return Number(x);
    if (x === 'true' || x === 'false') return x === 'true';
    if (x === 'null') return null;
    if (/^".*"$/.test(x)) { try { return JSON.parse(x); } catch { return x; } }
    return x;
  };
  if (op === 'in') {
    if (t.startsWith('[')) { try { const v = JSON.parse(t); if (Array.isArray(v)) return v; } catch { /* a plain list follows */ } }
    return t.split(/[,，]/).map((x) => x.trim()).filter(Boolean).map(scalar);
  }
  return scalar(t);
}

function showValue(v) {
  if (Array.isArray(v)) return v.map(showValue).join(', ');
  if (typeof v === 'string') return parseValue(v, '==') === v && !v.includes(',') ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

function describeMatch(match) {
  const key = match && match.any ? 'any' : 'all';
  const conds = (match && match[key]) || [];
  return h('span', { class: 'match' }, h('small', { class: 'pill' }, key === 'all' ? '全部满足' : '任一满足'), ' ',
    ...conds.flatMap((c, i) => [i ? h('span', { class: 'muted' }, key === 'all' ? ' 且 ' : ' 或 ') : '', h('code', {}, `${c.field} ${c.op} ${showValue(c.value)}`)]));
}

function adminRouting(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const act = async (fn) => { try { await fn(); await reload(); } catch (e) { fail(err, e); } };
  const reload = async () => {
    try {
      const [rules] = await Promise.all([api('routing/rules'), loadGroups()]);
      const items = (rules.items || []).slice().sort((a, b) => a.position - b.position);
      err.textContent = '';
      list.replaceChildren(table('rules-table', ['顺序', '名称', '条件', '技能组', '最低级别', '排队优先级', ''],
        items.map((r, i) => h('tr', { dataset: { ruleId: r.id, name: r.name } },
          h('td', { class: 'position' }, String(r.position)), h('td', { class: 'name' }, r.name), h('td', {}, describeMatch(r.match)),
          h('td', { class: 'group' }, r.group), h('td', {}, String(r.min_level)), h('td', {}, String(r.queue_priority)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small up', title: '上移', disabled: i === 0, onclick: () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { position: r.position - 1 } })) }, '↑'),
            h('button', { type: 'button', class: 'small down', title: '下移', disabled: i === items.length - 1, onclick: () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { position: r.position + 1 } })) }, '↓'),
            h('button', { type: 'button', class: 'small edit', onclick: () => ruleDialog(r, reload) }, '编辑'),
            confirmButton('删除', 'danger delete', () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'DELETE' })))))),
        '还没有路由规则：所有会话进入 default 组'));
    } catch (e) { fail(err, e); }
  };
  body.replaceChildren(
    pageHead('路由规则', 'Routing rules', h('button', { type: 'button', class: 'primary add-rule', onclick: () => ruleDialog(null, reload) }, '新建规则')),
    h('p', { class: 'muted page-note' }, '从上到下依次匹配，第一条命中的规则决定技能组、客服最低级别和排队优先级；都不命中则进入 default 组。条件只匹配已验证的标签 (tags.*)、渠道 channel 和访客选择的组 group。'),
    err, list);
  reload();
}

function ruleDialog(rule, done) {
  const match = (rule && rule.match) || { all: [] };
  const key = match.any ? 'any' : 'all';
  const combine = h('select', { name: 'combine' }, h('option', { value: 'all', selected: key === 'all' }, '全部满足 (all)'), h('option', { value: 'any', selected: key === 'any' }, '任一满足 (any)'));
  const rows = h('div', { class: 'conditions' });
  const fields = h('datalist', { id: 'rule-fields' }, ...['tags.vip_level', 'tags.inquiry_type', 'channel', 'group'].map((v) => h('option', { value: v })));
  const addRow = (c = { field: 'tags.', op: '==', value: '' }) => {
    const row = h('div', { class: 'cond' },
      h('input', { class: 'c-field', list: 'rule-fields', required: true, value: c.field, placeholder: 'tags.vip_level / channel / group', 'aria-label': '字段' }),
      h('select', { class: 'c-op', 'aria-label': '运算符' }, ...RULE_OPS.map((op) => h('option', { value: op, selected: op === c.op }, op))),
      h('input', { class: 'c-value', value: c.value === '' ? '' : showValue(c.value), placeholder: '值，如 3、web、a, b', 'aria-label': '值' }),
      h('button', { type: 'button', class: 'ghost small remove', title: '删除条件', onclick: () => row.remove() }, '✕'));
    rows.append(row);
  };
  for (const c of match[key] || []) addRow(c);
  if (!rows.children.length) addRow();
  const group = h('select', { name: 'group', required: true },
    ...[...new Set([...adm.groups.map((g) => g.name), rule ? rule.group : 'default'])].map((g) => h('option', { value: g, selected: (rule ? rule.group : 'default') === g }, g)));
  formDialog('rule-dialog', rule ? `编辑规则 · ${rule.name}` : '新建路由规则', [
    field('名称 Name', h('input', { name: 'name', required: true, maxlength: 200, value: rule ? rule.name : '' })),
    h('div', { class: 'field' }, h('span', {}, '条件 Match'), combine, rows, fields,
      h('button', { type: 'button', class: 'ghost small add-cond', onclick: () => addRow() }, '+ 添加条件'),
      h('small', { class: 'hint' }, '值：数字、true/false 按类型比较，其余按文本；in 用逗号分隔多个值')),
    h('div', { class: 'row3' },
      field('技能组 Group', group),
      field('最低级别 Min level', h('input', { name: 'min_level', type: 'number', min: 0, max: 1000, step: 1, value: rule ? rule.min_level : 0 })),
      field('排队优先级 Priority', h('input', { name: 'queue_priority', type: 'number', min: -1000, max: 1000, step: 1, value: rule ? rule.queue_priority : 0 }))),
    rule ? null : field('位置 Position（可选）', h('input', { name: 'position', type: 'number', min: 1, step: 1, placeholder: '默认放在最后' })),
  ], rule ? '保存' : '创建', async (fd) => {
    const conds = [...rows.querySelectorAll('.cond')].map((r) => {
      const op = $('.c-op', r).value;
      return { field: $('.c-field', r).value.trim(), op, value: parseValue($('.c-value', r).value, op) };
    });
    if (!conds.length) throw new Error('至少需要一个条件');
    const body = {
      name: String(fd.get('name')).trim(), match: { [fd.get('combine')]: conds }, group: fd.get('group'),
      min_level: Number(fd.get('min_level') || 0), queue_priority: Number(fd.get('queue_priority') || 0),
    };
    if (!rule && fd.get('position')) body.position = Number(fd.get('position'));
    if (rule) await api(`routing/rules/${encodeURIComponent(rule.id)}`, { method: 'PUT', body });
    else await api('routing/rules', { method: 'POST', body });
    await done();
  }, true);
}

// --- knowledge base ---

function adminKb(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'kb-list' }, h('p', { class: 'muted' }, '加载中…'));
  const pager = h('div', { class: 'pager' });
  const reload = async (index = adm.kbCursors.length - 1) => {
    try {
      const cursor = adm.kbCursors[index];
      const page = await api(`kb/articles?limit=20${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      adm.kbCursors.length = index + 1;
      if (page.next_cursor) adm.kbCursors.push(page.next_cursor);
      const more = !!page.next_cursor;
      err.textContent = '';
      list.replaceChildren(table('kb-table', ['ID', '问题', '相似问法', '分类', '更新时间', ''],
        (page.items || []).map((a) => h('tr', { dataset: { articleId: a.id } },
          h('td', {}, h('code', {}, a.id)), h('td', { class: 'question' }, a.question),
          h('td', { class: 'muted' }, (a.similar || []).length ? `${a.similar.length} 条` : '—'),
          h('td', {}, a.category || '—'), h('td', {}, stamp(a.updated_at)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small edit', onclick: () => articleDialog(a, () => reload(index)) }, '编辑'),
            confirmButton('删除', 'danger delete', async () => {
              try { await api(`kb/articles/${encodeURIComponent(a.id)}`, { method: 'DELETE' }); await reload(index); } catch (e) { fail(err, e); }
            })))),
        '知识库是空的：导入一个 JSON/CSV 文件，或新建文章'));
      pager.replaceChildren(
        h('button', { type: 'button', class: 'small prev', disabled: index === 0, onclick: () => reload(index - 1) }, '上一页'),
        h('span', { class: 'muted' }, `第 ${index + 1} 页`),
        h('button', { type: 'button', class: 'small next', disabled: !more, onclick: () => reload(index + 1) }, '下一页'));
    } catch (e) { fail(err, e); }
  };
  adm.kbCursors = [null];

  // Try a question: what the bot would answer, from which article, how sure, and whether it hands off.
  const q = h('input', { name: 'question', required: true, maxlength: 5000, placeholder: '输入一个访客可能问的问题，如：怎么退货？' });
  const tryOut = h('div', { class: 'try-result', 'aria-live': 'polite' });
  const tryForm = h('form', { class: 'inline-form kb-try' }, q, h('button', { type: 'submit', class: 'primary' }, '试一试'));
  tryForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    tryOut.replaceChildren(h('p', { class: 'muted' }, '正在询问机器人…'));
    try {
      const r = await api('bot/ask', { method: 'POST', body: { question: q.value.trim() } });
      const conf = typeof r.confidence === 'number' ? r.confidence : 0;
      tryOut.replaceChildren(
        h('div', { class: 'try-verdict' },
          h('span', { class: `pill ${r.handoff ? 'warn handoff' : 'st-active answered'}` }, r.handoff ? '将转人工 (handoff)' : '机器人直接回答'),
          h('span', { class: `confidence${conf < 0.7 ? ' low' : ''}` }, `置信度 ${(conf * 100).toFixed(1)}%`)),
        h('dl', {},
          kv('答案', r.answer ? h('span', { class: 'answer' }, r.answer) : null, 'answer-row'),
          kv('文章 ID', r.article_id ? h('code', { class: 'article-id' }, r.article_id) : null),
          kv('转人工', r.handoff ? '是' : '否')));
    } catch (e) { const box = alertBox(); fail(box, e); tryOut.replaceChildren(box); }
  });

  // Import: the §7 file as multipart `file`; the answer counts what was created and updated.
  const file = h('input', { type: 'file', name: 'file', hidden: true, accept: '.json,.csv,application/json,text/csv' });
  const fileName = h('span', { class: 'file-name muted' }, '未选择文件');
  const showName = () => { fileName.textContent = file.files[0] ? `${file.files[0].name} · ${bytes(file.files[0].size)}` : '未选择文件'; };
  file.addEventListener('change', showName);
  const importOut = h('div', { class: 'import-result', 'aria-live': 'polite' });
  const importForm = h('form', { class: 'inline-form kb-import' }, file,
    h('button', { type: 'button', class: 'pick-file', onclick: () => file.click() }, icon('file'), '选择文件'), fileName,
    h('button', { type: 'submit', class: 'primary' }, '导入'));
  importForm.addEventListener('reset', () => setTimeout(showName));
  importForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!file.files[0]) { importOut.replaceChildren(h('p', { class: 'error' }, '请先选择一个 JSON 或 CSV 文件')); return; }
    const form = new FormData();
    form.append('file', file.files[0], file.files[0].name);
    importOut.replaceChildren(h('p', { class: 'muted' }, '正在导入…'));
    try {
      const r = await api('kb/import', { method: 'POST', form });
      importOut.replaceChildren(h('p', { class: 'ok' }, `导入完成：新增 ${r.created} 条，更新 ${r.updated} 条`));
      importForm.reset();
      await reload(0);
    } catch (e) { const box = alertBox(); fail(box, e); importOut.replaceChildren(box); }
  });

  body.replaceChildren(
    pageHead('知识库', 'Knowledge base', h('button', { type: 'button', class: 'primary add-article', onclick: () => articleDialog(null, () => reload(0)) }, '新建文章')),
    err,
    h('div', { class: 'grid2 admin-grid' },
      h('section', { class: 'card' }, h('h4', {}, '试一试 Try a question', h('small', {}, 'POST /bot/ask')), tryForm, tryOut),
      h('section', { class: 'card' }, h('h4', {}, '导入 Import', h('small', {}, 'JSON 或 CSV：id,question,similar,answer,category')), importForm, importOut)),
    h('section', { class: 'card' }, h('h4', {}, '文章 Articles'), list, pager));
  reload(0);
}

function articleDialog(article, done) {
  const isNew = !article;
  formDialog('article-dialog', isNew ? '新建文章' : `编辑文章 · ${article.id}`, [
    isNew ? field('ID（外部键，导入同一 ID 会更新）', h('input', { name: 'id', required: true, maxlength: 200, placeholder: 'refund-policy' })) : h('p', { class: 'muted' }, h('code', {}, article.id)),
    field('标准问题 Question', h('input', { name: 'question', required: true, maxlength: 1000, value: article ? article.question : '' })),
    field('相似问法 Similar（每行一条）', h('textarea', { name: 'similar', rows: 3 }, article ? (article.similar || []).join('\n') : '')),
    field('答案 Answer', h('textarea', { name: 'answer', rows: 5, required: true, maxlength: 10000 }, article ? article.answer : '')),
    field('分类 Category', h('input', { name: 'category', maxlength: 100, value: article ? article.category || '' : '' })),
  ], isNew ? '创建' : '保存', async (fd) => {
    const body = {
      question: String(fd.get('question')).trim(), answer: String(fd.get('answer')).trim(), category: String(fd.get('category') || '').trim(),
      similar: String(fd.get('similar') || '').split('\n').map((x) => x.trim()).filter(Boolean),
    };
    if (isNew) await api('kb/articles', { method: 'POST', body: { id: String(fd.get('id')).trim(), ...body } });
    else await api(`kb/articles/${encodeURIComponent(article.id)}`, { method: 'PUT', body });
    await done();
  }, true);
}

// --- API keys ---

/** A secret shown once: a highlighted box with a copy button. */
function secretBox(cls, title, value) {
  const code = h('code', { class: 'secret-value' }, value);
  return h('div', { class: `card new-secret ${cls}`, role: 'status' },
    h('h4', {}, title, h('small', {}, '只显示这一次，请立即复制保存')),
    h('div', { class: 'secret-row' }, code,
      h('button', { type: 'button', class: 'small copy', onclick: async (ev) => {
        try { await navigator.clipboard.writeText(value); ev.target.textContent = '已复制'; } catch {
          const range = document.createRange(); range.selectNodeContents(code);
          getSelection().removeAllRanges(); getSelection().addRange(range);
          ev.target.textContent = '已选中，按 Ctrl+C';
        }
      } }, '复制')));
}

function adminKeys(body) {
  const err = alertBox('page-error');
  const fresh = h('div', { class: 'fresh' });
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      const keys = await api('api-keys');
      err.textContent = '';
      list.replaceChildren(table('keys-table', ['名称', '前缀', '创建时间', '状态', ''],
        (keys.items || []).map((k) => h('tr', { dataset: { keyId: k.id, name: k.name } },
          h('td', { class: 'name' }, k.name), h('td', {}, h('code', {}, k.prefix || '')), h('td', {}, stamp(k.created_at)),
          h('td', { class: 'state' }, k.revoked_at ? h('span', { class: 'pill' }, `已吊销 ${stamp(k.revoked_at)}`) : h('span', { class: 'pill st-active' }, '有效')),
          h('td', { class: 'row-actions' }, k.revoked_at ? null : confirmButton('吊销', 'danger revoke', async () => {
            try { await api(`api-keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' }); await reload(); } catch (e) { fail(err, e); }
          })))),
        '还没有 API 密钥'));
    } catch (e) { fail(err, e); }
  };
  const form = h('form', { class: 'inline-form key-form' },
    h('input', { name: 'name', required: true, maxlength: 200, placeholder: '用途，如 CRM 同步' }),
    h('button', { type: 'submit', class: 'primary' }, '创建密钥'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const k = await api('api-keys', { method: 'POST', body: { name: String(new FormData(form).get('name')).trim() } });
      form.reset();
      fresh.replaceChildren(secretBox('new-key', `新密钥 · ${k.name}`, k.key));
      await reload();
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('API 密钥', 'API keys'),
    h('p', { class: 'muted page-note' }, '服务器端集成使用：Authorization: Bearer <key>。可调用检索、导出、统计与访客标签同步等接口。'),
    h('div', { class: 'card' }, form), err, fresh, list);
  reload();
}

// --- webhooks ---

function adminWebhooks(body) {
  const err = alertBox('page-error');
  const fresh = h('div', { class: 'fresh' });
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const log = h('div', { class: 'deliveries' });
  adm.webhook = null;
  const reload = async () => {
    try {
      const hooks = (await api('webhooks')).items || [];
      err.textContent = '';
      list.replaceChildren(table('webhooks-table', ['URL', '事件', '创建时间', ''],
        hooks.map((w) => h('tr', { dataset: { webhookId: w.id }, class: adm.webhook === w.id ? 'selected' : '' },
          h('td', { class: 'url' }, w.url), h('td', {}, h('div', { class: 'tags' }, ...(w.events || []).map((e) => h('span', { class: 'tag client' }, e)))),
          h('td', {}, stamp(w.created_at)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small show-log', onclick: () => { adm.webhook = w.id; showLog(w); reload(); } }, '投递记录'),
            confirmButton('删除', 'danger delete', async () => {
              try {
                await api(`webhooks/${encodeURIComponent(w.id)}`, { method: 'DELETE' });
                if (adm.webhook === w.id) { adm.webhook = null; log.replaceChildren(); }
                await reload();
              } catch (e) { fail(err, e); }
            })))),
        '还没有 Webhook'));
    } catch (e) { fail(err, e); }
  };
  const showLog = async (w, cursor, rows = []) => {
    const logErr = alertBox();
    const head = h('h4', {}, `投递记录 · ${w.url}`,
      h('button', { type: 'button', class: 'small refresh-log', onclick: () => showLog(w) }, '刷新'));
    if (!cursor) log.replaceChildren(h('section', { class: 'card' }, head, h('p', { class: 'muted' }, '加载中…')));
    try {
      const page = await api(`webhooks/${encodeURIComponent(w.id)}/deliveries?limit=50${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      if (adm.webhook !== w.id) return;
      const all = rows.concat(page.items || []);
      log.replaceChildren(h('section', { class: 'card' }, head,
        table('deliveries-table', ['投递 ID', '事件', '状态', '尝试次数', '最后状态码', '创建时间', '送达时间'],
          all.map((d) => h('tr', { dataset: { deliveryId: d.delivery_id, status: d.status } },
            h('td', {}, h('code', {}, d.delivery_id)), h('td', { class: 'event' }, d.event),
            h('td', { class: 'status' }, h('span', { class: `pill dl-${d.status}` }, DELIVERY_TEXT[d.status] || d.status)),
            h('td', { class: 'attempts' }, String(d.attempts)), h('td', { class: 'code' }, d.last_status_code === null || d.last_status_code === undefined ? '—' : String(d.last_status_code)),
            h('td', {}, stamp(d.created_at)), h('td', {}, stamp(d.delivered_at)))),
          '还没有投递：有订阅的事件发生时会出现在这里'),
        page.next_cursor ? h('button', { type: 'button', class: 'small more', onclick: () => showLog(w, page.next_cursor, all) }, '加载更多') : null,
        logErr));
    } catch (e) {
      fail(logErr, e);
      log.replaceChildren(h('section', { class: 'card' }, head, logErr));
    }
  };
  const events = h('div', { class: 'checks events' }, ...WEBHOOK_EVENTS.map((e) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'events', value: e, checked: e === 'conversation.created' || e === 'message.created' }), e)));
  const form = h('form', { class: 'webhook-form' },
    h('div', { class: 'inline-form' },
      h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/kefu/webhook' }),
      h('input', { name: 'secret', minlength: 16, maxlength: 200, placeholder: '签名密钥（可选，至少 16 位；留空自动生成）' }),
      h('button', { type: 'submit', class: 'primary' }, '添加 Webhook')),
    events);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const bodyOut = { url: String(fd.get('url')).trim(), events: fd.getAll('events') };
    if (fd.get('secret')) bodyOut.secret = String(fd.get('secret'));
    try {
      const w = await api('webhooks', { method: 'POST', body: bodyOut });
      form.reset();
      fresh.replaceChildren(secretBox('new-webhook', `签名密钥 · ${w.url}`, w.secret));
      adm.webhook = w.id;
      await reload();
      showLog(w);
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('Webhooks', 'Webhooks'),
    h('p', { class: 'muted page-note' }, '事件以 POST 推送到你的地址，附 X-Kefu-Signature: sha256=<HMAC>；失败会按指数退避重试 24 小时。'),
    h('div', { class: 'card' }, form), err, fresh, list, log);
  reload();
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
