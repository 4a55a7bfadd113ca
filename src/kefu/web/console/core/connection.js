// The agent socket (/ws/agent): connect, reconnect with backoff and jitter, ping, and the sync that follows every
// `ready`: each open chat is caught up from its last seq (a chat new to this tab first loads its last page over HTTP).
// Frames go to chats/frames.js as FRAME events (core/events.js); it decides what they mean, and resends the outbox
// once every chat is synced.

import { $ } from './dom.js';
import { S } from './state.js';
import { HISTORY_PAGE, addMessage } from './conversations.js';
import { EXPIRED, FRAME, emit } from './events.js';
import { api } from './api.js';

const PING_EVERY_MS = 25000;
const PONG_TIMEOUT_MS = 10000;

function wsUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws/agent?token=${encodeURIComponent(S.token)}`;
}

export function wsSend(frame) {
  if (!S.ws || S.ws.readyState !== WebSocket.OPEN || S.conn !== 'live') return false;
  S.ws.send(JSON.stringify(frame));
  return true;
}

export function connect() {
  clearTimeout(S.retryTimer);
  if (!S.token || S.ws) return;
  if (!navigator.onLine) { setConn('offline'); return; }
  setConn(S.attempts ? 'reconnecting' : 'connecting');
  const ws = new WebSocket(wsUrl());
  S.ws = ws;
  ws.onmessage = (ev) => {
    let frame;
    try { frame = JSON.parse(ev.data); } catch { return; }
    emit(FRAME, frame);
  };
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    dropSocket();
    if (ev.code === 4401) { emit(EXPIRED, '登录已过期，请重新登录'); return; }
    scheduleReconnect();
  };
  ws.onerror = () => { /* onclose follows */ };
}

export function dropSocket() {
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
  const delay = Math.max(S.serverPauseMs || 0, cap / 2 + Math.random() * cap / 2); // 1013 after `unavailable`
  S.serverPauseMs = 0;
  S.attempts += 1;
  S.retryTimer = setTimeout(connect, delay);
}

export function setConn(state) {
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

/** Every 25 s a ping; no pong within 10 s means the connection is dead even if the socket has not noticed. */
export function startPing() {
  clearInterval(S.pingTimer);
  S.pingTimer = setInterval(() => {
    if (!wsSend({ type: 'ping' })) return;
    clearTimeout(S.pongTimer);
    S.pongTimer = setTimeout(() => { dropSocket(); scheduleReconnect(); }, PONG_TIMEOUT_MS);
  }, PING_EVERY_MS);
}

export function onPong() {
  clearTimeout(S.pongTimer);
}

/**
 * A chat this console knows nothing of yet starts from its last page of history (HTTP); then the socket's `sync`
 * replays whatever came after it. A chat it already holds just syncs from its last seq.
 */
export async function loadAndSync(c) {
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

export function startSync(c) {
  S.syncing.add(c.sid);
  if (!S.ws) return;
  S.ws.send(JSON.stringify({ type: 'sync', ref: 'sync:' + c.sid, session_id: c.sid, after_seq: c.lastSeq }));
}
