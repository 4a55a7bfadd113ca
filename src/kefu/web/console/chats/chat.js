// The chat (middle): opening a live chat or an archived one, its header and actions, typing and read receipts.
// The timeline inside it is chats/timeline.js, the composer chats/composer.js, the visitor panel chats/profile.js.

import { CONV_STATUS_TEXT } from '../core/text.js';
import { $, h, icon, toast } from '../core/dom.js';
import { S } from '../core/state.js';
import { addMessage, isOpen, newConv, visitorName } from '../core/conversations.js';
import { api } from '../core/api.js';
import { wsSend } from '../core/connection.js';
import { renderList } from './list.js';
import { ensureNotes, fillTimeline, loadOlder, renderMarks, scrollDown } from './timeline.js';
import { composerFor } from './composer.js';
import { renderProfile } from './profile.js';
import { openTransferDialog } from './transfer.js';

export function openChat(sid) {
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

export async function openArchive(sid) {
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

export function renderChat() {
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

function confirmClose(btn, c) {
  if (btn.dataset.armed) {
    if (!wsSend({ type: 'close', session_id: c.sid, ref: 'close:' + c.sid })) toast('未连接到服务器，稍后再试', 'error');
    return;
  }
  btn.dataset.armed = '1';
  btn.textContent = '确认结束？';
  setTimeout(() => { if (btn.isConnected) { delete btn.dataset.armed; btn.textContent = '结束会话'; } }, 4000);
}

export function renderTyping() {
  const el = $('.typing');
  if (!el || !S.current) return;
  const c = S.convs.get(S.current.sid);
  el.hidden = !(c && S.current.live && c.typingUntil > Date.now());
}

export function markRead() {
  if (!S.current || !S.current.live || document.visibilityState !== 'visible') return;
  const c = S.convs.get(S.current.sid);
  if (!c || c.lastSeq <= c.readSeq) return;
  if (wsSend({ type: 'read', session_id: c.sid, seq: c.lastSeq })) { c.readSeq = c.lastSeq; renderList(); }
}
