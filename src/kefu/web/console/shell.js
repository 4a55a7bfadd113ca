// The page around the views: the top bar (navigation, status, alerts, 快捷回复, 退出), the connection banner, and the
// hash routes that switch between 会话 (#/, #/c/<id>), 数据看板 (#/dashboard) and 管理 (#/admin/<page>).

import { STATUS_TEXT } from './core/text.js';
import { $, h, toast } from './core/dom.js';
import { S, isAdmin } from './core/state.js';
import { connect, wsSend } from './core/connection.js';
import { alertsOn, enableAlerts } from './chats/alerts.js';
import { renderList } from './chats/list.js';
import { loadCanned, openCannedDialog } from './chats/canned.js';
import { renderChat } from './chats/chat.js';
import { renderComposerHint } from './chats/composer.js';
import { signOut } from './session.js';
import { renderDashboard } from './dashboard.js';
import { renderAdmin } from './admin/admin.js';

export async function start() {
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

export function route() {
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

export function renderAll() {
  renderHeader();
  renderList();
  renderChat();
}

export function renderHeader() {
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
