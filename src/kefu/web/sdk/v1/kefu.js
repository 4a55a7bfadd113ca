/*! kefu.js v1: kefu's JavaScript SDK and chat widget (protocol v1). One file, no dependencies. MIT.
 * Reference: docs/sdk.md. Everything a user or agent typed is put into the page as text nodes, never as HTML. */
(() => {
'use strict';
if (window.Kefu) return;

const VERSION = '1.0.0';
const SCRIPT_SRC = document.currentScript ? document.currentScript.src : '';
const MAX_CONTEXT = 20000;

const I18N = {
  zh: {
    title: '在线客服', open: '联系客服', close: '关闭', placeholder: '请输入消息，Enter 发送',
    leavePlaceholder: '客服暂时不在线，请留言…', send: '发送', attach: '发送图片或文件',
    status: { online: '客服在线', busy: '客服繁忙，可能需要排队', offline: '客服离线 · 可留言' },
    leave: '当前没有客服在线。请留下您的问题，客服上线后会第一时间回复您。',
    bot: '智能助手', agent: '客服', welcome: '您好！我是在线客服，请问有什么可以帮您？',
    human: '转人工', helpful: '有帮助', unhelpful: '没帮助', thanks: '感谢您的反馈',
    queue: (p, eta) => `正在为您排队，您前面还有 ${p - 1} 位${eta ? `，预计等待 ${eta}` : ''}`,
    minutes: (m) => (m <= 1 ? '不到 1 分钟' : `约 ${m} 分钟`),
    typing: '对方正在输入…', read: '已读', delivered: '已送达', sending: '发送中…', failed: '发送失败',
    connecting: '正在连接…', reconnecting: '网络连接已断开，正在重新连接…',
    ended: '本次会话已结束，发送消息即可开始新的咨询', servedBy: (n) => `${n} 为您服务`,
    botServing: '智能助手为您服务',
  },
  en: {
    title: 'Customer service', open: 'Chat with us', close: 'Close', placeholder: 'Type a message, Enter to send',
    leavePlaceholder: 'We are offline. Leave a message…', send: 'Send', attach: 'Send a picture or file',
    status: { online: 'We are online', busy: 'All agents are busy; you may wait', offline: 'Offline · leave a message' },
    leave: 'Nobody is online right now. Leave your question and we will reply as soon as we are back.',
    bot: 'Assistant', agent: 'Agent', welcome: 'Hello! How can we help you today?',
    human: 'Talk to a person', helpful: 'Helpful', unhelpful: 'Not helpful', thanks: 'Thanks for your feedback',
    queue: (p, eta) => `You are number ${p} in the queue${eta ? `; about ${eta}` : ''}`,
    minutes: (m) => (m <= 1 ? 'under a minute' : `${m} minutes`),
    typing: 'typing…', read: 'Read', delivered: 'Delivered', sending: 'Sending…', failed: 'Not sent',
    connecting: 'Connecting…', reconnecting: 'Connection lost, reconnecting…',
    ended: 'This conversation has ended. Send a message to start a new one.', servedBy: (n) => `${n} is helping you`,
    botServing: 'Our assistant is helping you',
  },
};

const CSS = `
:host{all:initial}*{box-sizing:border-box}[hidden]{display:none!important}
.w{--a:var(--kefu-accent,#1677ff);font:14px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:#1f2329}
button{font:inherit;cursor:pointer}
.launcher,.panel{position:fixed;right:24px;z-index:2147483000}
.launcher{bottom:24px;width:60px;height:60px;border-radius:50%;border:0;background:var(--a);color:#fff;box-shadow:0 8px 24px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}
.badge{position:absolute;top:-2px;right:-2px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;border:2px solid #fff;background:#f5222d;color:#fff;font-size:12px;font-weight:600;line-height:18px}
.panel{bottom:96px;width:380px;height:min(620px,calc(100vh - 120px));background:#fff;border-radius:16px;box-shadow:0 16px 48px rgba(0,0,0,.2);display:flex;flex-direction:column;overflow:hidden}
header{background:var(--a);color:#fff;padding:14px 14px 14px 16px;display:flex;align-items:center;gap:10px}
.avatar{width:38px;height:38px;border-radius:50%;background:rgba(255,255,255,.22);display:flex;align-items:center;justify-content:center}
.head{flex:1;min-width:0}.title{font-size:16px;font-weight:600}
.sub{font-size:12px;opacity:.92;display:flex;align-items:center;gap:6px;white-space:nowrap;overflow:hidden}
.dot{width:8px;height:8px;border-radius:50%;background:#bfbfbf;flex:none}.dot.online{background:#52c41a}.dot.busy{background:#faad14}
.human{border:1px solid rgba(255,255,255,.7);background:none;color:#fff;border-radius:14px;padding:3px 10px;font-size:12px}
.x{border:0;background:none;color:#fff;font-size:24px;line-height:1;padding:2px 6px}
.banner{padding:8px 14px;font-size:13px;background:#fff7e6;color:#ad6800}.banner.conn{background:#fff1f0;color:#a8071a}
.list{flex:1;overflow-y:auto;padding:16px 12px;background:#f4f5f7;display:flex;flex-direction:column;gap:12px;overscroll-behavior:contain}
.msg{display:flex;flex-direction:column;align-items:flex-start;max-width:84%;align-self:flex-start}
.msg.me{align-self:flex-end;align-items:flex-end}
.who,.meta,.fb span,.typing{font-size:12px;color:#8f959e}.who{margin:0 4px 3px}.meta{margin:3px 4px 0}
.bubble{background:#fff;border-radius:4px 14px 14px;padding:9px 12px;white-space:pre-wrap;word-break:break-word;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.me .bubble{background:var(--a);color:#fff;border-radius:14px 4px 14px 14px}
.bubble a{color:var(--a)}.me .bubble a{color:#fff}.failed .bubble{opacity:.6}.mark{margin-left:6px}.mark.read{color:var(--a)}
.note{align-self:center;font-size:12px;color:#8f959e;background:#e9ebef;border-radius:10px;padding:4px 12px;max-width:90%;text-align:center}
.fb{display:flex;gap:6px;margin-top:6px}
.fb button{border:1px solid #dcdfe6;background:#fff;border-radius:14px;padding:2px 10px;font-size:12px;color:#4e5969;display:flex;gap:4px;align-items:center}.down svg{transform:scaleY(-1)}
.thumb{display:block;max-width:200px;max-height:200px;min-width:60px;min-height:40px;border-radius:8px;cursor:zoom-in;background:#eef0f3}
.cap{margin-top:6px}.file{display:flex;gap:10px;align-items:center;border:0;background:none;color:inherit;padding:0;text-align:left}
.file b{font-weight:500;display:block;max-width:200px;overflow:hidden;text-overflow:ellipsis}
.typing{padding:0 16px;height:20px;background:#f4f5f7}
.composer{display:flex;align-items:flex-end;gap:8px;padding:10px 12px 12px;border-top:1px solid #eceef1}
textarea{flex:1;resize:none;border:1px solid #dcdfe6;border-radius:18px;padding:8px 14px;font:inherit;line-height:20px;height:38px;max-height:120px;outline:none;color:inherit}
textarea:focus{border-color:var(--a)}
.attach{width:38px;height:38px;border:0;border-radius:50%;background:#f2f3f5;color:#4e5969;display:flex;align-items:center;justify-content:center;flex:none}
.send{height:38px;border:0;border-radius:19px;background:var(--a);color:#fff;padding:0 16px}
.lightbox{position:fixed;inset:0;z-index:2147483001;background:rgba(0,0,0,.82);display:flex;align-items:center;justify-content:center;cursor:zoom-out}
.lightbox img{max-width:94vw;max-height:94vh}
@media (max-width:480px){.panel{inset:0;width:auto;height:auto;border-radius:0}.launcher.open{display:none}textarea{font-size:16px}}
`;

const ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 7h2v2H7zm4 0h2v2h-2zm4 0h2v2h-2z';
const ICON_AGENT = 'M12 3a8 8 0 0 0-8 8v6a2 2 0 0 0 2 2h2v-7H6v-1a6 6 0 0 1 12 0v1h-2v7h2a2 2 0 0 0 2-2v-6a8 8 0 0 0-8-8z';
const ICON_THUMB = 'M2 10h4v11H2zm6 11h9.5a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 19 10h-5.5l.9-4.3a1.8 1.8 0 0 0-1.7-2.2L8 9z';
const ICON_FILE = 'M6 2h8l6 6v14H6zm7 1.5V9h5.5z';
const ICON_CLIP = 'M4 5h16v14H4zm2 2v8l4-4 3 3 2-2 3 3V7zm9 1a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z';

// --- state
let opts = null, base = '', t = I18N.en, ui = null;
let token = null, visitorId = null, uid = null; // the visitor, as kept in localStorage
let ws = null, gen = 0, attempts = 0, retryTimer = 0, heartbeat = 0, lastFrame = 0, lastSent = 0, connecting = false, rejected = 0;
let serverPause = 0; // ms the server asked for (`unavailable`, its database away) before the next connect
let ready = false, synced = false, conn = 'idle', serviceStatus = null;
let current = null, opening = null, wantOpen = null, seen = 0, panelOpen = false;
let reporting = false, typingSent = 0, typingTimer = 0;
let convs = new Map(); // session_id -> {sid, status, agent, lastSeq, msgs: Map(seq -> message frame), ...}
let outbox = []; // sends not yet acknowledged: retried with the same client_msg_id
const waiters = new Map();
const pendingEls = new Map();
const syncing = new Set();
const listeners = new Map();
const blobs = new Map();

// --- small helpers
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (tag === 'button') el.type = 'button';
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) if (kid != null && kid !== '') el.append(kid instanceof Node ? kid : String(kid));
  return el;
}

function icon(d, size = 24) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const path = document.createElementNS(ns, 'path');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: size, height: size, 'aria-hidden': 'true' })) svg.setAttribute(k, v);
  path.setAttribute('d', d);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return 'c-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function safe(fn, arg) {
  if (typeof fn !== 'function') return;
  try { fn(arg); } catch (err) { console.error('kefu: a callback threw', err); }
}

function emit(type, fields) {
  const event = { type, ...fields };
  for (const fn of [...(listeners.get(type) || []), ...(listeners.get('*') || [])]) safe(fn, event);
  if (opts) safe(opts.onEvent, event);
}

function defaultServer() {
  if (!SCRIPT_SRC) return location.origin;
  const url = new URL(SCRIPT_SRC, location.href);
  const at = url.pathname.lastIndexOf('/sdk/v1/');
  return url.origin + (at > 0 ? url.pathname.slice(0, at) : '');
}

function storageKey() {
  return `kefu:v1:${opts.appId}`;
}

function load() {
  try { return JSON.parse(localStorage.getItem(storageKey()) || '{}') || {}; } catch { return {}; }
}

function save() {
  if (!opts) return;
  const queued = outbox.filter((i) => !i.file).map(({ cmid, sid, msg_type, content }) => ({ cmid, sid, msg_type, content }));
  try {
    localStorage.setItem(storageKey(), JSON.stringify({ token, visitorId, uid, sessionId: current, seen, outbox: queued }));
  } catch { /* storage full or disabled: the widget still works for this page view */ }
}

const isOpen = (c) => !!c && !!c.status && c.status !== 'closed';
// A retry after `unavailable`: at least the server's retry_after, growing with each try, with jitter.
const backoff = (s, n) => {
  const least = (s || 1) * 1000;
  return least + Math.random() * (Math.min(30000, least * 2 ** Math.min(n, 4)) - least);
};
const hasOpen = () => isOpen(convs.get(current));
const visible = () => panelOpen && document.visibilityState === 'visible';

function fmtTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function fmtSize(n) {
  if (!n && n !== 0) return '';
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(0)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

// --- connection
function wsSend(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  lastSent = Date.now();
  return true;
}

async function newSession() {
  const user = opts.user || {};
  const body = { app_id: opts.appId, channel: opts.channel || 'web' };
  if (user.id != null) Object.assign(body, { user_id: String(user.id), user_hash: user.hash });
  if (user.name) body.name = user.name;
  if (user.tags) Object.assign(body, { tags: user.tags, tags_hash: user.tagsHash });
  const r = await fetch(`${base}/api/v1/visitor/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new Error((data.error && data.error.message) || `HTTP ${r.status}`);
    err.code = (data.error && data.error.code) || 'http_' + r.status;
    err.fatal = r.status >= 400 && r.status < 500 && r.status !== 429;
    throw err;
  }
  if (data.visitor_id !== visitorId) forgetConversations();
  token = data.token;
  visitorId = data.visitor_id;
  save();
}

function forgetConversations() {
  convs = new Map();
  if (current) switchTo(null);
  for (const item of outbox) item.sid = null;
}

function start() {
  if (!opts || ws || connecting || retryTimer) return;
  connect();
}

async function connect() {
  retryTimer = 0;
  if (!opts || ws || connecting) return;
  connecting = true;
  setConn(attempts ? 'reconnecting' : 'connecting');
  try {
    if (!token) await newSession();
  } catch (err) {
    connecting = false;
    if (err.fatal) {
      setConn('failed');
      emit('kefu_error', { code: err.code, message: err.message });
      return;
    }
    return retry();
  }
  connecting = false;
  if (!opts) return;
  const sock = new WebSocket(`${base.replace(/^http/, 'ws')}/ws/visitor?token=${encodeURIComponent(token)}`);
  ws = sock;
  gen += 1;
  ready = synced = false;
  sock.onmessage = (e) => {
    if (ws !== sock) return;
    let frame;
    try { frame = JSON.parse(e.data); } catch { return; }
    onFrame(frame);
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    if (e.code === 4401) {
      // The token was refused (expired, or the visitor is gone): start again as a new visitor.
      token = null;
      rejected += 1;
      save();
    }
    lost();
  };
}

function drop() {
  const sock = ws;
  if (!sock) return;
  ws = null;
  sock.onclose = sock.onmessage = null;
  try { sock.close(1000); } catch { /* already closing */ }
  lost();
}

function lost() {
  ready = synced = false;
  clearInterval(heartbeat);
  if (opening) wantOpen = opening;
  opening = null;
  syncing.clear();
  setConn('reconnecting');
  retry();
}

function retry() {
  if (!opts || retryTimer) return;
  // Exponential backoff with jitter, so a restarted server is not hit by every browser at once.
  const ceiling = Math.min(30000, 500 * 2 ** Math.min(attempts, 6));
  attempts += 1;
  if (rejected > 3) attempts = Math.max(attempts, 6);
  retryTimer = setTimeout(connect, Math.max(serverPause, ceiling / 2 + Math.random() * (ceiling / 2)));
  serverPause = 0;
}

function onOnline() {
  if (!opts || ws || connecting) return;
  clearTimeout(retryTimer);
  retryTimer = 0;
  attempts = 0;
  connect();
}

function setConn(state) {
  if (state === conn) return;
  conn = state;
  emit('connection', { state });
  renderBanner();
}

async function fetchStatus() {
  try {
    const r = await fetch(`${base}/api/v1/status?app_id=${encodeURIComponent(opts.appId)}`);
    if (r.ok && !ready) setStatus((await r.json()).status);
  } catch { /* shown once connected */ }
}

function setStatus(status) {
  if (!status || status === serviceStatus) return;
  serviceStatus = status;
  renderHeader();
  renderBanner();
  if (opts) safe(opts.onSessionChange, status);
  emit('status', { status });
}

// --- frames from the server
function onFrame(f) {
  lastFrame = Date.now();
  switch (f.type) {
    case 'ready': return onReady(f);
    case 'message': return onMessage(f);
    case 'ack': return onAck(f);
    case 'synced': return onSynced(f);
    case 'conversation': return onConversation(f);
    case 'queue': return onQueue(f);
    case 'service_status': return setStatus(f.status);
    case 'typing': return onTyping(f);
    case 'read': return onRead(f);
    case 'error': return onError(f);
    default: return undefined;
  }
}

function upsert(f) {
  let c = convs.get(f.session_id);
  if (!c) convs.set(f.session_id, (c = { sid: f.session_id, lastSeq: 0, msgs: new Map(), readByAgent: 0, queue: null }));
  for (const k of ['status', 'agent', 'group', 'context', 'created_at']) if (k in f) c[k] = f[k];
  if (f.queue_position != null) c.queue = { position: f.queue_position, eta: f.eta_seconds };
  if (c.status !== 'queued') c.queue = null;
  return c;
}

function onReady(f) {
  attempts = rejected = 0;
  ready = true;
  visitorId = (f.you && f.you.visitor_id) || visitorId;
  setStatus(f.service_status);
  const listed = f.conversations || [];
  for (const c of listed) upsert(c);
  const listedIds = new Set(listed.map((c) => c.session_id));
  if (listed.length && !listedIds.has(current)) {
    const newest = [...listed].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))[0];
    switchTo(newest.session_id);
  } else if (!convs.has(current)) {
    switchTo(null);
  }
  if (hasOpen()) wantOpen = null;
  // Replay what was missed: every open conversation, and the one on screen even if it closed meanwhile.
  for (const c of convs.values()) {
    if (!listedIds.has(c.sid) && c.sid !== current) continue;
    if (!listedIds.has(c.sid)) c.closing = true;
    syncing.add(c.sid);
    wsSend({ type: 'sync', ref: 'sync:' + c.sid, session_id: c.sid, after_seq: c.lastSeq });
  }
  clearInterval(heartbeat);
  heartbeat = setInterval(beat, 10000);
  setConn('online');
  renderHeader();
  emit('ready', { visitorId });
  if (!syncing.size) afterSync();
}

// The server closes a socket that sends nothing for 120 s (4408): a reader who only listens still pings.
function beat() {
  const now = Date.now();
  if (now - lastFrame > 45000) drop();
  else if (now - lastFrame > 20000 || now - lastSent > 20000) wsSend({ type: 'ping' });
}

function onSynced(f) {
  const c = convs.get(f.session_id);
  if (c) c.lastSeq = Math.max(c.lastSeq, f.last_seq || 0);
  if (c && c.closing) setClosed(c);
  syncing.delete(f.session_id);
  if (!syncing.size) afterSync();
}

function afterSync() {
  synced = true;
  updateBadge();
  markRead();
  if (!hasOpen() && (wantOpen || outbox.length)) ensureOpen();
  flush();
}

function onConversation(f) {
  const hadOpen = hasOpen() && current !== f.session_id;
  const wasOpen = isOpen(convs.get(f.session_id));
  const c = upsert(f);
  if (f.session_id !== current && isOpen(c) && !hadOpen) {
    switchTo(f.session_id);
    opening = wantOpen = null;
    flush();
  }
  if (f.session_id === current) {
    if (!isOpen(c) && (wasOpen || c.status === 'closed')) setClosed(c);
    renderHeader();
    renderBanner();
  }
  emit('conversation', { conversation: publicConversation(c) });
}

function setClosed(c) {
  if (c.ended) return;
  c.status = 'closed';
  c.ended = true;
  if (c.sid === current && ui) {
    ui.list.append(h('div', { class: 'note ended' }, t.ended));
    scrollDown();
  }
  renderHeader();
  renderBanner();
}

const publicConversation = ({ sid, status, agent, group, context, queue }) => ({ sessionId: sid, status, agent, group, context, queue });

function onQueue(f) {
  const c = convs.get(f.session_id);
  if (c) c.queue = { position: f.position, eta: f.eta_seconds };
  if (f.session_id === current) renderBanner();
  emit('queue', { sessionId: f.session_id, position: f.position, etaSeconds: f.eta_seconds });
}

function onMessage(f) {
  const c = convs.get(f.session_id) || upsert({ session_id: f.session_id });
  if (c.msgs.has(f.seq)) return; // our own devices get our messages too: one copy per seq
  c.msgs.set(f.seq, f);
  c.lastSeq = Math.max(c.lastSeq, f.seq);
  if (f.sender === 'user' && f.client_msg_id) settle(f.client_msg_id, f);
  if (f.session_id === current) renderMessage(f);
  if (f.session_id === current && f.sender !== 'user') {
    showTyping(false);
    markRead();
    updateBadge();
  }
  const { type, ...message } = f;
  emit('message', { message });
}

function onTyping(f) {
  if (f.sender === 'user' || f.session_id !== current) return;
  showTyping(true);
  emit('typing', { sessionId: f.session_id, sender: f.sender });
}

function onRead(f) {
  const c = convs.get(f.session_id);
  if (!c) return;
  if (f.sender === 'user') { // read on another of this visitor's devices
    if (f.session_id === current) seen = Math.max(seen, f.seq || 0);
    return updateBadge();
  }
  c.readByAgent = Math.max(c.readByAgent, f.seq || 0);
  if (f.session_id === current && ui) {
    for (const el of ui.list.querySelectorAll('.me[data-seq]')) if (+el.dataset.seq <= c.readByAgent) setMark(el, t.read, 'read');
  }
  emit('read', { sessionId: f.session_id, sender: f.sender, seq: f.seq });
}

function onError(f) {
  const ref = f.ref || '';
  const item = outbox.find((i) => i.cmid === ref);
  if (item && f.code === 'unavailable') {
    // The server's database is away: the same client_msg_id goes again after a growing pause.
    item.sentGen = -1;
    item.tries = (item.tries || 0) + 1;
    setTimeout(flush, backoff(f.retry_after, item.tries));
    return;
  }
  if (item) {
    if (f.code === 'conversation_closed') {
      const c = convs.get(item.sid);
      if (isOpen(c)) setClosed(c);
      item.sid = null;
    }
    if (['conversation_closed', 'rate_limited', 'internal_error'].includes(f.code)) {
      item.sentGen = -1;
      setTimeout(flush, (f.retry_after || 1) * 1000);
      return;
    }
    return fail(item, f);
  }
  if (ref.startsWith('sync:')) {
    const sid = ref.slice(5);
    if (f.code === 'unavailable') { // still syncing: asked again after a pause, on this socket only
      const g = gen;
      setTimeout(() => {
        const c = convs.get(sid);
        if (g === gen && c && syncing.has(sid)) wsSend({ type: 'sync', ref, session_id: sid, after_seq: c.lastSeq });
      }, backoff(f.retry_after, 1));
      return;
    }
    syncing.delete(sid);
    if (f.code === 'conversation_not_found') {
      convs.delete(sid);
      if (sid === current) switchTo(null);
    }
    if (!syncing.size && ready) afterSync();
    return;
  }
  if (f.code === 'unavailable') {
    if (ref === 'open') { // asked again after a pause
      [wantOpen, opening] = [opening, null];
      setTimeout(() => ensureOpen(), backoff(f.retry_after, 1));
    } else serverPause = (f.retry_after || 1) * 1000; // the socket closes next (1013): reconnect after it
    return;
  }
  if (ref === 'open') {
    opening = wantOpen = null;
    for (const i of outbox.filter((i) => !i.sid)) fail(i, f);
  }
  emit('kefu_error', { code: f.code, message: f.message });
}

// --- sending
function ensureOpen(request) {
  if (request) wantOpen = request;
  if (hasOpen() || opening) return;
  wantOpen = wantOpen || {};
  start();
  if (!synced) return;
  opening = wantOpen;
  wantOpen = null;
  const frame = { type: 'open_chat', ref: 'open', channel: opts.channel || 'web' };
  if (opening.context) frame.context = String(opening.context).slice(0, MAX_CONTEXT);
  if (opening.group) frame.group = opening.group;
  if (!wsSend(frame)) [wantOpen, opening] = [opening, null];
}

function enqueue(fields) {
  if (!opts) return Promise.reject(new Error('Kefu.init() first'));
  const item = { cmid: newId(), sid: hasOpen() ? current : null, content: '', ...fields };
  outbox.push(item);
  save();
  showPending(item);
  const done = new Promise((resolve, reject) => waiters.set(item.cmid, { resolve, reject }));
  start();
  if (!hasOpen()) ensureOpen();
  flush();
  return done;
}

function flush() {
  if (!synced || !ws) return;
  for (const item of outbox) {
    if (item.sentGen === gen || item.uploading) continue;
    if (!item.sid || !isOpen(convs.get(item.sid))) {
      if (!hasOpen()) {
        ensureOpen();
        continue;
      }
      item.sid = current;
    }
    if (item.file && !item.attachment_id) {
      upload(item);
      continue;
    }
    const { cmid, sid, msg_type, content, attachment_id } = item;
    const frame = { type: 'send', ref: cmid, session_id: sid, client_msg_id: cmid, msg_type, content, attachment_id };
    if (wsSend(frame)) item.sentGen = gen;
  }
}

async function upload(item) {
  item.uploading = true;
  try {
    const form = new FormData();
    form.append('file', item.file, item.file.name);
    const r = await fetch(`${base}/api/v1/uploads`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: form });
    const body = await r.json().catch(() => ({}));
    if (r.ok) [item.attachment_id, item.attachment] = [body.attachment_id, body];
    else if (r.status >= 400 && r.status < 500 && ![401, 408, 429].includes(r.status)) {
      item.uploading = false;
      return fail(item, body.error || { code: 'upload_failed', message: `HTTP ${r.status}` });
    }
  } catch { /* offline: retried below */ }
  item.uploading = false;
  setTimeout(flush, item.attachment_id ? 0 : 3000);
}

// Our socket gets only the ack of our message (protocol §3): the message is made from it.
function onAck({ ref, ...f }) {
  const i = outbox.find((x) => x.cmid === f.client_msg_id);
  if (i && f.seq) onMessage({ ...f, type: 'message', sender: 'user', sender_id: visitorId, msg_type: i.msg_type, content: i.content || '', ...(i.attachment && { attachment: i.attachment }) });
  settle(f.client_msg_id, f);
}

function settle(cmid, f) {
  const at = outbox.findIndex((i) => i.cmid === cmid);
  if (at >= 0) {
    outbox.splice(at, 1);
    save();
  }
  const el = pendingEls.get(cmid);
  if (el) setMark(el, t.delivered, '');
  const waiter = waiters.get(cmid);
  waiters.delete(cmid);
  if (waiter) waiter.resolve({ sessionId: f.session_id, seq: f.seq, messageId: f.message_id });
}

function fail(item, err) {
  outbox = outbox.filter((i) => i !== item);
  save();
  const el = pendingEls.get(item.cmid);
  if (el) {
    el.classList.add('failed');
    setMark(el, `${t.failed}: ${err.message || err.code}`, 'fail');
  }
  const waiter = waiters.get(item.cmid);
  waiters.delete(item.cmid);
  if (waiter) waiter.reject(Object.assign(new Error(err.message || err.code), { code: err.code }));
  emit('kefu_error', { code: err.code, message: err.message });
}

function markRead() {
  const c = convs.get(current);
  if (!c || !visible()) return;
  if (c.lastSeq > seen) save((seen = c.lastSeq));
  if (ready && isOpen(c) && c.lastSeq > (c.readSent || 0)) {
    c.readSent = c.lastSeq;
    wsSend({ type: 'read', session_id: c.sid, seq: c.lastSeq });
  }
  updateBadge();
}

function unreadCount() {
  const c = convs.get(current);
  if (!c) return 0;
  let n = 0;
  for (const m of c.msgs.values()) if (m.seq > seen && m.sender !== 'user') n += 1;
  return n;
}

// --- page errors
function report(message, stack) {
  if (reporting) return;
  reporting = true; // an onEvent handler that itself throws must not loop
  try { emit('error', { message: String(message || 'Unknown error'), stack: stack ? String(stack) : '', source: 'page' }); }
  finally { reporting = false; }
}

function onPageError(e) {
  if (SCRIPT_SRC && e.filename === SCRIPT_SRC) return; // never turn kefu's own faults into chats
  const err = e.error;
  report(err instanceof Error ? err.message : e.message || String(err), err && err.stack);
}

function onRejection(e) {
  const r = e.reason;
  let message = r instanceof Error ? r.message : r;
  if (typeof message !== 'string') try { message = JSON.stringify(message); } catch { message = String(message); }
  report(message, r && r.stack);
}

// --- the widget
function mount() {
  if (ui || !opts) return;
  if (!document.body) return document.addEventListener('DOMContentLoaded', mount, { once: true });
  const host = h('kefu-widget', { id: 'kefu-widget' }); // not a div: page rules for divs do not hide it
  const root = host.attachShadow({ mode: 'open' });
  const badge = h('span', { class: 'badge', hidden: true });
  const launcher = h('button', { class: 'launcher', title: t.open, onclick: () => setOpen(!panelOpen) }, icon(ICON_CHAT, 28), badge);
  const dot = h('span', { class: 'dot' });
  const sub = h('span', { class: 'subtext' });
  const human = h('button', { class: 'human', hidden: true, onclick: () => hasOpen() && wsSend({ type: 'request_human', session_id: current }) }, t.human);
  const closer = h('button', { class: 'x', title: t.close, onclick: () => setOpen(false) }, '×');
  const header = h('header', {}, h('div', { class: 'avatar' }, icon(ICON_AGENT, 22)),
    h('div', { class: 'head' }, h('div', { class: 'title' }, opts.title || t.title), h('div', { class: 'sub' }, dot, sub)), human, closer);
  const banner = h('div', { class: 'banner', hidden: true, role: 'status' });
  const list = h('div', { class: 'list', role: 'log', 'aria-live': 'polite' }, h('div', { class: 'note welcome' }, t.welcome));
  const typing = h('div', { class: 'typing' });
  const input = h('textarea', { rows: 1, placeholder: t.placeholder, 'aria-label': t.placeholder });
  const file = h('input', { type: 'file', accept: 'image/*,.pdf,.txt', hidden: true });
  const attach = h('button', { class: 'attach', title: t.attach, onclick: () => file.click() }, icon(ICON_CLIP, 20));
  const send = h('button', { class: 'send', onclick: () => submit() }, t.send);
  const panel = h('section', { class: 'panel', hidden: true, role: 'dialog', 'aria-label': t.title },
    header, banner, list, typing, h('div', { class: 'composer' }, attach, input, send, file));
  root.append(h('style', {}, CSS), h('div', { class: 'w' }, panel, launcher));
  ui = { host, root, panel, launcher, badge, dot, sub, human, banner, list, typing, input };

  file.addEventListener('change', () => {
    for (const f of file.files) sendFile(f).catch(() => {});
    file.value = '';
  });
  const submit = () => {
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    grow();
    api.send(text).catch(() => {});
  };
  const grow = () => {
    input.style.height = 'auto';
    input.style.height = Math.min(120, Math.max(38, input.scrollHeight + 2)) + 'px';
  };
  input.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition (Chinese input) is not a send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) submit(e.preventDefault());
  });
  input.addEventListener('input', () => {
    grow();
    if (ready && hasOpen() && Date.now() - typingSent > 3000) {
      typingSent = Date.now();
      wsSend({ type: 'typing', session_id: current });
    }
  });
  document.body.append(host);
  renderList();
  renderHeader();
  renderBanner();
}

function setOpen(open) {
  if (!ui) return;
  panelOpen = open;
  ui.panel.hidden = !open;
  ui.launcher.classList.toggle('open', open);
  if (open) {
    start();
    markRead();
    scrollDown();
    ui.input.focus({ preventScroll: true });
  }
  emit(open ? 'open' : 'close', {});
}

function updateBadge() {
  if (!ui) return;
  const n = visible() ? 0 : unreadCount();
  ui.badge.hidden = n === 0;
  ui.badge.textContent = n > 99 ? '99+' : String(n);
  emit('unread', { count: n });
}

function renderHeader() {
  if (!ui) return;
  const c = convs.get(current);
  let text = serviceStatus ? t.status[serviceStatus] || serviceStatus : '';
  if (isOpen(c) && c.status === 'active' && c.agent) text = t.servedBy(c.agent.name || t.agent);
  else if (isOpen(c) && c.status === 'bot') text = t.botServing;
  ui.sub.textContent = text;
  ui.dot.className = 'dot ' + (isOpen(c) && c.status !== 'queued' ? 'online' : serviceStatus || '');
  ui.human.hidden = !(isOpen(c) && c.status === 'bot');
  const leave = serviceStatus === 'offline' && !(isOpen(c) && c.status === 'active');
  ui.input.placeholder = leave ? t.leavePlaceholder : t.placeholder;
}

function renderBanner() {
  if (!ui) return;
  const c = convs.get(current);
  let text = '';
  let cls = 'banner';
  if (conn === 'reconnecting' || (conn === 'connecting' && outbox.length)) {
    text = conn === 'reconnecting' ? t.reconnecting : t.connecting;
    cls += ' conn';
  } else if (isOpen(c) && c.status === 'queued' && c.queue) {
    const eta = c.queue.eta != null ? t.minutes(Math.ceil(c.queue.eta / 60)) : '';
    text = t.queue(c.queue.position, eta);
    cls += ' queue';
  } else if (serviceStatus === 'offline' && !(isOpen(c) && c.status === 'active')) {
    text = t.leave;
    cls += ' leave';
  }
  ui.banner.className = cls;
  ui.banner.textContent = text;
  ui.banner.hidden = !text;
}

function showTyping(on) {
  if (!ui) return;
  clearTimeout(typingTimer);
  ui.typing.textContent = on ? t.typing : '';
  if (on) typingTimer = setTimeout(() => showTyping(false), 5000);
}

function switchTo(sid) {
  if (sid !== current) seen = 0;
  current = sid;
  save();
  renderList();
  renderHeader();
  renderBanner();
}

function renderList() {
  if (!ui) return;
  ui.list.replaceChildren(h('div', { class: 'note welcome' }, t.welcome));
  pendingEls.clear();
  const c = convs.get(current);
  if (c) for (const seq of [...c.msgs.keys()].sort((a, b) => a - b)) renderMessage(c.msgs.get(seq));
  for (const item of outbox) showPending(item);
  if (c && c.ended) ui.list.append(h('div', { class: 'note ended' }, t.ended));
  updateBadge();
}

function scrollDown() {
  if (ui) ui.list.scrollTop = ui.list.scrollHeight;
}

function setMark(el, text, cls) {
  const mark = el.querySelector('.mark');
  if (!mark) return;
  mark.textContent = text;
  mark.className = 'mark ' + cls;
}

function renderMessage(m) {
  if (!ui) return;
  let before = null;
  for (const el of ui.list.querySelectorAll('[data-seq]')) {
    if (+el.dataset.seq === m.seq) return;
    if (+el.dataset.seq > m.seq && (before = el)) break;
  }
  const pending = m.client_msg_id && pendingEls.get(m.client_msg_id);
  if (pending) pending.remove();
  pendingEls.delete(m.client_msg_id);
  ui.list.insertBefore(messageEl(m), before || ui.list.querySelector('.pending, .ended'));
  scrollDown();
}

function showPending(item) {
  if (!ui || pendingEls.has(item.cmid)) return;
  if (item.file && item.msg_type === 'image' && !item.preview) item.preview = URL.createObjectURL(item.file);
  const attachment = item.file ? { name: item.file.name, size: item.file.size, content_type: item.file.type, local: item.preview } : null;
  const el = h('div', { class: 'msg me pending', 'data-sender': 'user' },
    bubble({ msg_type: item.msg_type, content: item.content, attachment }),
    h('div', { class: 'meta' }, fmtTime(), h('span', { class: 'mark' }, t.sending)));
  pendingEls.set(item.cmid, el);
  ui.list.append(el);
  scrollDown();
}

function messageEl(m) {
  const attrs = { 'data-seq': m.seq, 'data-sender': m.sender };
  if (m.sender === 'system' || m.msg_type === 'event') return h('div', { class: 'note', ...attrs }, m.content);
  const mine = m.sender === 'user';
  const c = convs.get(m.session_id);
  const el = h('div', { class: 'msg ' + (mine ? 'me' : 'them'), ...attrs });
  if (!mine) {
    const name = m.sender === 'bot' ? t.bot : (c && c.agent && c.agent.agent_id === m.sender_id && c.agent.name) || t.agent;
    el.append(h('div', { class: 'who' }, name));
  }
  el.append(bubble(m));
  if (m.sender === 'bot' && m.article_id) el.append(feedbackEl(m));
  const read = mine && c && m.seq <= c.readByAgent;
  el.append(h('div', { class: 'meta' }, fmtTime(m.timestamp), mine ? h('span', { class: 'mark' + (read ? ' read' : '') }, read ? t.read : t.delivered) : ''));
  return el;
}

function bubble(m) {
  const b = h('div', { class: 'bubble' });
  const a = m.attachment;
  if (a) {
    const image = m.msg_type === 'image' || /^image\//.test(a.content_type || '');
    b.append(image ? imageEl(a) : fileEl(a));
    if (m.content) b.append(h('div', { class: 'cap' }, linkify(m.content)));
  } else if (m.msg_type === 'link' && /^https?:\/\//i.test(m.content)) {
    b.append(link(m.content));
  } else {
    b.append(...linkify(m.content || ''));
  }
  return b;
}

function linkify(text) {
  const out = [];
  let last = 0;
  for (const found of text.matchAll(/https?:\/\/[^\s<>"'，。！？、）)\]]+/gi)) {
    if (found.index > last) out.push(text.slice(last, found.index));
    out.push(link(found[0]));
    last = found.index + found[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function link(url) {
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' }, url);
}

function authed(url) {
  // Attachments are served only with the visitor's token, so they are fetched and shown through object URLs.
  const abs = new URL(url, base + '/').href;
  if (!blobs.has(abs)) {
    const got = fetch(abs, { headers: { Authorization: `Bearer ${token}` } })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((blob) => URL.createObjectURL(blob));
    got.catch(() => blobs.delete(abs));
    blobs.set(abs, got);
  }
  return blobs.get(abs);
}

function imageEl(a) {
  const img = h('img', { class: 'thumb', alt: a.name || '' });
  if (a.local) img.src = a.local;
  else authed(a.thumbnail_url || a.url).then((u) => (img.src = u), () => {});
  img.addEventListener('click', () => (a.local ? lightbox(a.local) : a.url && authed(a.url).then(lightbox, () => {})));
  return img;
}

function lightbox(src) {
  if (!ui) return;
  const box = h('div', { class: 'lightbox', role: 'dialog', onclick: () => box.remove() }, h('img', { src, alt: '' }));
  ui.root.querySelector('.w').append(box);
}

function fileEl(a) {
  const el = h('button', { class: 'file', type: 'button' }, icon(ICON_FILE, 28), h('span', {}, h('b', {}, a.name || 'file'), h('small', {}, fmtSize(a.size))));
  el.addEventListener('click', () => a.url && authed(a.url).then((u) => h('a', { href: u, download: a.name || 'file' }).click(), () => {}));
  return el;
}

function feedbackEl(m) {
  const box = h('div', { class: 'fb' });
  const give = (helpful) => {
    if (!wsSend({ type: 'feedback', session_id: m.session_id, seq: m.seq, helpful })) return;
    box.replaceChildren(h('span', {}, t.thanks));
    emit('feedback', { sessionId: m.session_id, seq: m.seq, helpful });
  };
  box.append(
    h('button', { class: 'up', onclick: () => give(true) }, icon(ICON_THUMB, 14), t.helpful),
    h('button', { class: 'down', onclick: () => give(false) }, icon(ICON_THUMB, 14), t.unhelpful),
  );
  return box;
}

// --- the public API
function init(options) {
  if (!options || !options.appId) throw new TypeError('Kefu.init: appId is required');
  if (opts) teardown();
  opts = { ...options };
  base = String(opts.server || defaultServer()).replace(/\/+$/, '');
  const lang = opts.locale || document.documentElement.lang || navigator.language || 'en';
  t = /^zh/i.test(lang) ? I18N.zh : I18N.en;
  const saved = load();
  uid = opts.user && opts.user.id != null ? String(opts.user.id) : null;
  if (saved.token && (saved.uid || null) === uid) {
    token = saved.token;
    visitorId = saved.visitorId || null;
    current = saved.sessionId || null;
    seen = saved.seen || 0;
    outbox = (saved.outbox || []).map((i) => ({ ...i, sentGen: -1 }));
    if (current) upsert({ session_id: current });
  }
  addEventListener('error', onPageError);
  addEventListener('unhandledrejection', onRejection);
  addEventListener('online', onOnline);
  addEventListener('offline', drop);
  document.addEventListener('visibilitychange', markRead);
  mount();
  if (token) start();
  else fetchStatus();
}

function shutdown() {
  teardown();
  listeners.clear();
}

function teardown() {
  if (!opts) return;
  removeEventListener('error', onPageError);
  removeEventListener('unhandledrejection', onRejection);
  removeEventListener('online', onOnline);
  removeEventListener('offline', drop);
  document.removeEventListener('visibilitychange', markRead);
  clearTimeout(retryTimer);
  clearInterval(heartbeat);
  clearTimeout(typingTimer);
  if (ws) ws.onclose = ws.onmessage = null;
  if (ws) ws.close(1000);
  if (ui) ui.host.remove();
  for (const p of blobs.values()) p.then(URL.revokeObjectURL, () => {});
  blobs.clear();
  pendingEls.clear();
  waiters.clear();
  syncing.clear();
  convs = new Map();
  outbox = [];
  opts = ui = ws = token = visitorId = current = opening = wantOpen = serviceStatus = null;
  retryTimer = attempts = rejected = seen = 0;
  ready = synced = connecting = panelOpen = false;
  conn = 'idle';
}

const api = {
  version: VERSION,
  init,
  shutdown,
  openChat(options = {}) {
    if (!opts) throw new Error('Kefu.init() first');
    setOpen(true);
    ensureOpen(hasOpen() ? null : { context: options.context, group: options.group });
  },
  closeChat() {
    setOpen(false);
  },
  send(text) {
    const content = String(text == null ? '' : text).trim();
    if (!content) return Promise.reject(new TypeError('Kefu.send: empty message'));
    return enqueue({ msg_type: 'text', content });
  },
  sendFile(file, caption = '') {
    if (!(file instanceof Blob)) return Promise.reject(new TypeError('Kefu.sendFile: a File or Blob is required'));
    if (!file.name) file = new File([file], 'file', { type: file.type });
    return enqueue({ msg_type: /^image\//.test(file.type) ? 'image' : 'file', content: String(caption), file });
  },
  on(type, fn) {
    if (!listeners.has(type)) listeners.set(type, new Set());
    listeners.get(type).add(fn);
    return () => api.off(type, fn);
  },
  off(type, fn) {
    const set = listeners.get(type);
    if (!set) return;
    if (fn) set.delete(fn);
    else set.clear();
  },
  get state() {
    return { connection: conn, status: serviceStatus, visitorId, sessionId: current, unread: unreadCount(), queued: outbox.length };
  },
};
const sendFile = api.sendFile;
window.Kefu = api;
})();
