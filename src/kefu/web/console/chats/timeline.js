// A chat's timeline: messages by seq, internal notes by time, older pages on scrolling up, pending sends.

import { bytes, clock } from '../core/format.js';
import { $, h, icon, toast } from '../core/dom.js';
import { S } from '../core/state.js';
import { HISTORY_PAGE, addMessage, lowestSeq, olderExists, visitorName } from '../core/conversations.js';
import { api, blobUrl } from '../core/api.js';
import { agentName, learnName } from '../core/colleagues.js';
import { teachAction } from './teach.js';

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

export function fillTimeline(c, box) {
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
export function redrawTimeline(c, toBottom) {
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
export async function loadOlder(c, clicked) {
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

export async function ensureNotes(c) {
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

export function scrollDown(force) {
  const box = $('.messages');
  if (!box) return;
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  if (force || near) box.scrollTop = box.scrollHeight;
}

export function renderMessage(c, m) {
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

export function messageEl(c, m, pending) {
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
  return h('div', attrs, meta, bubble, mine ? h('div', { class: 'mark' }, pending ? '发送中…' : '') : null, pending ? null : teachAction(c, m));
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

export function renderMarks(c) {
  for (const el of document.querySelectorAll('.messages .msg.me[data-seq]')) {
    const mark = $('.mark', el);
    if (mark) mark.textContent = +el.dataset.seq <= c.peerRead ? '已读' : '未读';
  }
}
