// 管理 (admins only): the menu of admin pages and the frame they are drawn in. Each page is a module of its own
// exporting one function that draws the page into the element it is given; to add a page, write that module and
// add it to ADMIN_PAGES (docs/console.md, "Adding a page").

import { $, h } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { adminAgents } from './agents.js';
import { adminGroups } from './groups.js';
import { adminRouting } from './routing.js';
import { adminKb } from './kb.js';
import { adminGaps } from './gaps.js';
import { adminKeys } from './api-keys.js';
import { adminWebhooks } from './webhooks.js';

/** The admin menu in order, the first page the default: `#/admin/<key>` draws `draw(body)` into the page. */
const ADMIN_PAGES = [
  { key: 'agents', zh: '客服', en: 'Agents', draw: adminAgents },
  { key: 'groups', zh: '技能组', en: 'Groups', draw: adminGroups },
  { key: 'routing', zh: '路由规则', en: 'Routing rules', draw: adminRouting },
  { key: 'kb', zh: '知识库', en: 'Knowledge base', draw: adminKb },
  { key: 'gaps', zh: '知识库缺口', en: 'KB gaps', draw: adminGaps },
  { key: 'api-keys', zh: 'API 密钥', en: 'API keys', draw: adminKeys },
  { key: 'webhooks', zh: 'Webhooks', en: 'Webhooks', draw: adminWebhooks },
];

export function renderAdmin() {
  const root = $('.admin');
  if (!root) return;
  const m = /^#\/admin\/?([\w-]*)/.exec(location.hash);
  const page = ADMIN_PAGES.find((p) => p.key === (m && m[1])) || ADMIN_PAGES[0];
  const body = h('section', { class: 'admin-body', dataset: { page: page.key } });
  root.replaceChildren(
    h('nav', { class: 'admin-nav', 'aria-label': '管理' },
      ...ADMIN_PAGES.map(({ key, zh, en }) => h('a', { href: `#/admin/${key}`, class: key === page.key ? 'active' : '', dataset: { page: key } }, zh, h('small', {}, en)))),
    body);
  if (!S.me || !S.me.role) { body.dataset.waiting = '1'; body.append(h('p', { class: 'muted' }, '加载中…')); return; }
  if (!isAdmin()) { body.append(h('div', { class: 'card empty-state' }, '仅管理员可以使用管理页面')); return; }
  page.draw(body);
}
