// What each frame from the agent socket does to the chats (protocol §3): new messages, assignments, transfers,
// notes, typing, read marks, errors. `ready` starts the sync that core/connection.js carries out.

import { $, toast } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { addMessage, conv, isOpen, saveProfile, visitorName } from '../core/conversations.js';
import { api } from '../core/api.js';
import { learnName, loadAgents } from '../core/colleagues.js';
import { loadAndSync, onPong, setConn, startPing, startSync, wsSend } from '../core/connection.js';
import { backoffMs } from '../core/backoff.js';
import { notifyAssigned } from './alerts.js';
import { refreshQueue, refreshQueueSoon, renderList } from './list.js';
import { markRead, openChat, renderChat, renderTyping } from './chat.js';
import { redrawTimeline, renderMarks, renderMessage, scrollDown } from './timeline.js';
import { renderAll, renderHeader } from '../shell.js';
import { renderAdmin } from '../admin/admin.js';

const TYPING_SHOWN_MS = 5000;

export function onFrame(f) {
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
    case 'pong': return onPong();
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
  startPing();
  renderAll();
  refreshQueue();
  if (isAdmin() && !S.agents) loadAgents().then(renderChat).catch(() => {});
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

// The sending socket gets only the ack of its own message (protocol §3): the message is made from the ack and
// what was sent. Another device of this agent gets the message frame instead.
function onAck(f) {
  const m = f.client_msg_id && S.outbox.get(f.client_msg_id);
  if (!m) return;
  if (f.seq) {
    onMessage({
      type: 'message', session_id: f.session_id, seq: f.seq, message_id: f.message_id, client_msg_id: f.client_msg_id,
      sender: 'agent', sender_id: S.me.agent_id, msg_type: m.msg_type, content: m.content || '', timestamp: f.timestamp,
      ...(m.attachment ? { attachment: m.attachment } : {}),
    });
  }
  S.outbox.delete(f.client_msg_id);
  const p = $(`.msg.pending[data-cmid="${CSS.escape(f.client_msg_id)}"]`); // a sync may have brought it first
  if (p) p.remove();
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
  if (f.code === 'unavailable') return retryLater(f, ref);
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

/**
 * `unavailable`: the server's database is away for now. A send stays in the outbox (still pending) and goes again
 * under its client_msg_id after a growing pause; a sync is asked again; anything else is said once. Without a ref
 * the socket closes next (1013) and core/connection.js reconnects after the pause.
 */
function retryLater(f, ref) {
  const ws = S.ws;
  if (ref.startsWith('send:')) {
    const cmid = ref.slice(5);
    const m = S.outbox.get(cmid);
    if (!m) return;
    m.tries = (m.tries || 0) + 1;
    setTimeout(() => {
      if (S.ws !== ws || !S.outbox.has(cmid)) return; // a reconnect resends the outbox by itself
      const { sid, msg_type, content, attachment_id } = m;
      wsSend({ type: 'send', ref, session_id: sid, client_msg_id: cmid, msg_type, content, attachment_id });
    }, backoffMs(f.retry_after, m.tries));
    return;
  }
  if (ref.startsWith('sync:')) {
    const c = S.convs.get(ref.slice(5));
    setTimeout(() => { if (c && S.ws === ws && S.syncing.has(c.sid)) startSync(c); }, backoffMs(f.retry_after, 1));
    return;
  }
  if (!ref) { S.serverPauseMs = (f.retry_after || 1) * 1000; return; }
  toast(f.message || f.code, 'error');
}
