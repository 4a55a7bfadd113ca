// 技能组 Groups: list with agent counts; add.

import { stamp } from '../core/format.js';
import { h } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, fail, pageHead, table } from './forms.js';

export async function loadGroups() {
  S.admin.groups = (await api('groups')).items || [];
  return S.admin.groups;
}

export function adminGroups(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      await loadGroups();
      err.textContent = '';
      list.replaceChildren(table('groups-table', ['名称', '说明', '客服数', '创建时间'],
        S.admin.groups.map((g) => h('tr', { dataset: { group: g.name } }, h('td', { class: 'name' }, g.name), h('td', {}, g.description || '—'),
          h('td', {}, String(g.agent_count)), h('td', {}, stamp(g.created_at)))), '还没有技能组'));
    } catch (e) { fail(err, e); }
  };
  const form = h('form', { class: 'inline-form group-form' },
    h('input', { name: 'name', required: true, maxlength: 100, placeholder: '组名，如 vip、售后' }),
    h('input', { name: 'description', maxlength: 500, placeholder: '说明（可选）' }),
    h('button', { type: 'submit', class: 'primary' }, '添加技能组'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api('groups', { method: 'POST', body: { name: String(fd.get('name')).trim(), description: String(fd.get('description') || '').trim() } });
      form.reset();
      await reload();
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('技能组', 'Groups'), h('div', { class: 'card' }, form), err, list);
  reload();
}
