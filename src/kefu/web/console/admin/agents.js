// 客服 Agents: list, add, edit (name, role, level, max concurrent, groups), reset a password.

import { ROLE_TEXT, STATUS_TEXT } from '../core/text.js';
import { h, toast } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, fail, field, formDialog, pageHead, table } from './forms.js';
import { loadGroups } from './groups.js';

export function adminAgents(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      const [agents] = await Promise.all([api('agents'), loadGroups()]);
      S.agents = agents.items || [];
      err.textContent = '';
      list.replaceChildren(table('agents-table', ['姓名', '邮箱', '角色', '技能组', '级别', '最大并发', '状态', '接待中', ''],
        S.agents.map((a) => h('tr', { dataset: { agentId: a.agent_id, email: a.email } },
          h('td', { class: 'name' }, a.name || '—'), h('td', {}, a.email), h('td', {}, ROLE_TEXT[a.role] || a.role),
          h('td', {}, h('div', { class: 'tags' }, ...(a.groups || []).map((g) => h('span', { class: 'tag client' }, g)))),
          h('td', { class: 'level' }, String(a.level)), h('td', { class: 'max' }, String(a.max_concurrent)),
          h('td', {}, h('span', { class: `me-status`, dataset: { status: a.status } }, STATUS_TEXT[a.status] || a.status)),
          h('td', {}, String(a.load ?? 0)),
          h('td', { class: 'row-actions' }, h('button', { type: 'button', class: 'small edit', onclick: () => agentDialog(a, reload) }, '编辑')))),
        '还没有客服'));
    } catch (e) { fail(err, e); }
  };
  body.replaceChildren(
    pageHead('客服', 'Agents', h('button', { type: 'button', class: 'primary add-agent', onclick: () => agentDialog(null, reload) }, '添加客服')),
    err, list);
  reload();
}

/** Checkboxes for the app's groups plus a box for new ones (created on save). */
function groupPicker(selected) {
  const names = [...new Set([...S.admin.groups.map((g) => g.name), ...selected, 'default'])];
  const extra = h('input', { name: 'new_groups', placeholder: '新技能组，逗号分隔（保存时创建）' });
  const el = h('div', { class: 'group-picker' },
    h('div', { class: 'checks' }, ...names.map((g) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'groups', value: g, checked: selected.includes(g) }), g))),
    extra);
  const value = () => [...new Set([
    ...[...el.querySelectorAll('input[name=groups]:checked')].map((i) => i.value),
    ...extra.value.split(/[,，]/).map((x) => x.trim()).filter(Boolean),
  ])];
  return { el, value };
}

function agentDialog(agent, done) {
  const isNew = !agent;
  const groups = groupPicker(agent ? agent.groups || [] : ['default']);
  const role = h('select', { name: 'role' }, ...['agent', 'admin'].map((r) => h('option', { value: r, selected: (agent ? agent.role : 'agent') === r }, `${ROLE_TEXT[r]} (${r})`)));
  formDialog('agent-dialog', isNew ? '添加客服' : `编辑客服 · ${agent.name || agent.email}`, [
    isNew ? field('邮箱 Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'off' })) : h('p', { class: 'muted' }, agent.email),
    field(isNew ? '初始密码 Password' : '重置密码（留空不改）', h('input', { name: 'password', type: 'password', minlength: 8, required: isNew, autocomplete: 'new-password' }), '至少 8 个字符'),
    field('姓名 Name', h('input', { name: 'name', value: agent ? agent.name || '' : '', maxlength: 200, autofocus: !isNew })),
    field('角色 Role', role),
    h('div', { class: 'row2' },
      field('级别 Level', h('input', { name: 'level', type: 'number', min: 0, max: 1000, step: 1, required: true, value: agent ? agent.level : 1 }), '越高越资深；规则可要求最低级别'),
      field('最大并发 Max concurrent', h('input', { name: 'max_concurrent', type: 'number', min: 1, max: 1000, step: 1, required: true, value: agent ? agent.max_concurrent : 5 }))),
    field('技能组 Groups', groups.el),
  ], isNew ? '添加' : '保存', async (fd) => {
    const body = { role: fd.get('role'), level: Number(fd.get('level')), max_concurrent: Number(fd.get('max_concurrent')), groups: groups.value() };
    const name = String(fd.get('name') || '').trim();
    if (name) body.name = name;
    if (fd.get('password')) body.password = fd.get('password');
    if (isNew) {
      body.email = String(fd.get('email')).trim();
      await api('agents', { method: 'POST', body });
      toast(`已添加客服 ${name || body.email}`);
    } else {
      await api(`agents/${encodeURIComponent(agent.agent_id)}`, { method: 'PUT', body });
      toast('已保存');
    }
    await done();
  });
}
