// The visitor panel (right): who the visitor is, trusted and client tags, context, their other conversations.

import { CHANNEL_TEXT, CONV_STATUS_TEXT, REASON_TEXT } from '../core/text.js';
import { clock } from '../core/format.js';
import { $, h, kv } from '../core/dom.js';
import { S } from '../core/state.js';
import { visitorName } from '../core/conversations.js';
import { api } from '../core/api.js';
import { openArchive } from './chat.js';

function tagList(tags, cls) {
  const entries = Object.entries(tags || {});
  if (!entries.length) return h('span', { class: 'muted' }, '无');
  return h('div', { class: 'tags' }, ...entries.map(([k, v]) => h('span', { class: `tag ${cls}` }, `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)));
}

export function renderProfile(c) {
  const pane = $('.profile');
  if (!pane) return;
  if (!c) { pane.replaceChildren(h('div', { class: 'placeholder small' }, '访客信息')); S.historyFor = null; return; }
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
  S.historyFor = key;
  api(`conversations?user_id=${encodeURIComponent(key)}&limit=10`).then((data) => {
    if (S.historyFor !== key) return;
    const rows = (data.items || []).filter((r) => r.session_id !== c.sid);
    past.replaceChildren(...(rows.length ? rows.map((r) => h('li', { onclick: () => openArchive(r.session_id), tabindex: 0 },
      h('span', {}, r.session_id), h('span', { class: `pill st-${r.status}` }, CONV_STATUS_TEXT[r.status] || r.status), h('small', {}, clock(r.created_at))))
      : [h('li', { class: 'muted' }, '没有其他会话')]));
  }).catch(() => past.replaceChildren(h('li', { class: 'muted' }, '无法加载')));
}
