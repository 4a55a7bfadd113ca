// The agent's conversations as the console holds them (S.convs): the record, messages by seq, notes, the visitor's
// profile; and the questions the views ask of one (is it open, who is the visitor, what is unread).

import { PROFILE_KEY, S } from './state.js';

export const HISTORY_PAGE = 50; // messages per page of history (on opening a chat, and per scroll to the top)

export function newConv(sid) {
  return {
    sid, rec: { session_id: sid, status: 'active' }, msgs: new Map(), lastSeq: 0, readSeq: 0, peerRead: 0,
    profile: null, typingUntil: 0, gone: false,
    notes: new Map(), notesState: null, // note_id -> internal note; null | 'loading' | 'ok' | 'error'
    loadingOlder: false, olderError: null,
  };
}

export function conv(sid) {
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
export function saveProfile(sid, profile) {
  const all = savedProfiles();
  all[sid] = profile;
  const keys = Object.keys(all);
  for (const k of keys.slice(0, Math.max(0, keys.length - 50))) delete all[k];
  sessionStorage.setItem(PROFILE_KEY, JSON.stringify(all));
}

export const isOpen = (c) => c && !c.gone && c.rec.status !== 'closed';

export const lowestSeq = (c) => { let low = 0; for (const seq of c.msgs.keys()) if (!low || seq < low) low = seq; return low; };
/** seq starts at 1 with no gaps, so a chat whose lowest loaded seq is above 1 has older messages to load. */
export const olderExists = (c) => !c.archived && lowestSeq(c) > 1;

export function addMessage(c, m) {
  if (!m.seq || c.msgs.has(m.seq)) return false; // every device gets every message: one copy per seq
  c.msgs.set(m.seq, m);
  c.lastSeq = Math.max(c.lastSeq, m.seq);
  if (m.client_msg_id && S.outbox.has(m.client_msg_id) && m.sender_id === S.me.agent_id) S.outbox.delete(m.client_msg_id);
  return true;
}

export function visitorName(c) {
  const v = c.profile && c.profile.visitor;
  return (v && (v.name || v.user_id)) || (c.rec && (c.rec.user_id || c.rec.visitor_id)) || '访客';
}

export function unread(c) {
  let n = 0;
  for (const m of c.msgs.values()) if (m.sender === 'user' && m.seq > c.readSeq) n += 1;
  return n;
}

export function lastMessage(c) {
  let last = null;
  for (const m of c.msgs.values()) if (!last || m.seq > last.seq) last = m;
  return last;
}

/** Since when the visitor has waited for an answer: their latest message after the last agent message. */
export function waitingSince(c) {
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  let since = null;
  for (const m of msgs) {
    if (m.sender === 'user') since = since || m.timestamp;
    else if (m.sender === 'agent') since = null;
  }
  return isOpen(c) ? since : null;
}
