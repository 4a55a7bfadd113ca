// The conversation list (left): 我的会话 (the agent's chats, live), 排队 (the queue) and 全部 (admins).

import { CONV_STATUS_TEXT } from '../core/text.js';
import { clock, duration } from '../core/format.js';
import { $, h } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { isOpen, lastMessage, unread, visitorName, waitingSince } from '../core/conversations.js';
import { api } from '../core/api.js';
import { openArchive, openChat } from './chat.js';

const QUEUE_REFRESH_MS = 60000; // a fallback only: queue_changed frames refresh the queue at once
const LATE_AFTER_S = 60;

export async function refreshQueue() {
  clearTimeout(S.queueTimer);
  if (!S.token) return;
  S.queueTimer = setTimeout(refreshQueue, QUEUE_REFRESH_MS);
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

export function refreshQueueSoon() {
  clearTimeout(S.queueSoonTimer);
  S.queueSoonTimer = setTimeout(refreshQueue, 300);
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

export function renderList() {
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

export function tickWaits() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.wait[data-since]')) {
    const secs = (now - Date.parse(el.dataset.since)) / 1000;
    el.textContent = '等待 ' + duration(secs);
    el.classList.toggle('late', secs > LATE_AFTER_S);
  }
}
