// 路由规则 Routing rules: the rules in the order they are tried, the match editor, move, edit, delete.

import { $, h } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, confirmButton, fail, field, formDialog, pageHead, table } from './forms.js';
import { loadGroups } from './groups.js';

const RULE_OPS = ['==', '!=', '>', '>=', '<', '<=', 'in', 'contains'];

/** A condition's value as typed: numbers, true/false/null and JSON stay typed; `in` takes a list. */
function parseValue(text, op) {
  const t = String(text).trim();
  const scalar = (x) => {
    if (/^-?\d+(\.\d+)?$/.test(x)) return Number(x);
    if (x === 'true' || x === 'false') return x === 'true';
    if (x === 'null') return null;
    if (/^".*"$/.test(x)) { try { return JSON.parse(x); } catch { return x; } }
    return x;
  };
  if (op === 'in') {
    if (t.startsWith('[')) { try { const v = JSON.parse(t); if (Array.isArray(v)) return v; } catch { /* a plain list follows */ } }
    return t.split(/[,，]/).map((x) => x.trim()).filter(Boolean).map(scalar);
  }
  return scalar(t);
}

function showValue(v) {
  if (Array.isArray(v)) return v.map(showValue).join(', ');
  if (typeof v === 'string') return parseValue(v, '==') === v && !v.includes(',') ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

function describeMatch(match) {
  const key = match && match.any ? 'any' : 'all';
  const conds = (match && match[key]) || [];
  return h('span', { class: 'match' }, h('small', { class: 'pill' }, key === 'all' ? '全部满足' : '任一满足'), ' ',
    ...conds.flatMap((c, i) => [i ? h('span', { class: 'muted' }, key === 'all' ? ' 且 ' : ' 或 ') : '', h('code', {}, `${c.field} ${c.op} ${showValue(c.value)}`)]));
}

export function adminRouting(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const act = async (fn) => { try { await fn(); await reload(); } catch (e) { fail(err, e); } };
  const reload = async () => {
    try {
      const [rules] = await Promise.all([api('routing/rules'), loadGroups()]);
      const items = (rules.items || []).slice().sort((a, b) => a.position - b.position);
      err.textContent = '';
      list.replaceChildren(table('rules-table', ['顺序', '名称', '条件', '技能组', '最低级别', '排队优先级', ''],
        items.map((r, i) => h('tr', { dataset: { ruleId: r.id, name: r.name } },
          h('td', { class: 'position' }, String(r.position)), h('td', { class: 'name' }, r.name), h('td', {}, describeMatch(r.match)),
          h('td', { class: 'group' }, r.group), h('td', {}, String(r.min_level)), h('td', {}, String(r.queue_priority)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small up', title: '上移', disabled: i === 0, onclick: () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { position: r.position - 1 } })) }, '↑'),
            h('button', { type: 'button', class: 'small down', title: '下移', disabled: i === items.length - 1, onclick: () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'PUT', body: { position: r.position + 1 } })) }, '↓'),
            h('button', { type: 'button', class: 'small edit', onclick: () => ruleDialog(r, reload) }, '编辑'),
            confirmButton('删除', 'danger delete', () => act(() => api(`routing/rules/${encodeURIComponent(r.id)}`, { method: 'DELETE' })))))),
        '还没有路由规则：所有会话进入 default 组'));
    } catch (e) { fail(err, e); }
  };
  body.replaceChildren(
    pageHead('路由规则', 'Routing rules', h('button', { type: 'button', class: 'primary add-rule', onclick: () => ruleDialog(null, reload) }, '新建规则')),
    h('p', { class: 'muted page-note' }, '从上到下依次匹配，第一条命中的规则决定技能组、客服最低级别和排队优先级；都不命中则进入 default 组。条件只匹配已验证的标签 (tags.*)、渠道 channel 和访客选择的组 group。'),
    err, list);
  reload();
}

function ruleDialog(rule, done) {
  const match = (rule && rule.match) || { all: [] };
  const key = match.any ? 'any' : 'all';
  const combine = h('select', { name: 'combine' }, h('option', { value: 'all', selected: key === 'all' }, '全部满足 (all)'), h('option', { value: 'any', selected: key === 'any' }, '任一满足 (any)'));
  const rows = h('div', { class: 'conditions' });
  const fields = h('datalist', { id: 'rule-fields' }, ...['tags.vip_level', 'tags.inquiry_type', 'channel', 'group'].map((v) => h('option', { value: v })));
  const addRow = (c = { field: 'tags.', op: '==', value: '' }) => {
    const row = h('div', { class: 'cond' },
      h('input', { class: 'c-field', list: 'rule-fields', required: true, value: c.field, placeholder: 'tags.vip_level / channel / group', 'aria-label': '字段' }),
      h('select', { class: 'c-op', 'aria-label': '运算符' }, ...RULE_OPS.map((op) => h('option', { value: op, selected: op === c.op }, op))),
      h('input', { class: 'c-value', value: c.value === '' ? '' : showValue(c.value), placeholder: '值，如 3、web、a, b', 'aria-label': '值' }),
      h('button', { type: 'button', class: 'ghost small remove', title: '删除条件', onclick: () => row.remove() }, '✕'));
    rows.append(row);
  };
  for (const c of match[key] || []) addRow(c);
  if (!rows.children.length) addRow();
  const group = h('select', { name: 'group', required: true },
    ...[...new Set([...S.admin.groups.map((g) => g.name), rule ? rule.group : 'default'])].map((g) => h('option', { value: g, selected: (rule ? rule.group : 'default') === g }, g)));
  formDialog('rule-dialog', rule ? `编辑规则 · ${rule.name}` : '新建路由规则', [
    field('名称 Name', h('input', { name: 'name', required: true, maxlength: 200, value: rule ? rule.name : '' })),
    h('div', { class: 'field' }, h('span', {}, '条件 Match'), combine, rows, fields,
      h('button', { type: 'button', class: 'ghost small add-cond', onclick: () => addRow() }, '+ 添加条件'),
      h('small', { class: 'hint' }, '值：数字、true/false 按类型比较，其余按文本；in 用逗号分隔多个值')),
    h('div', { class: 'row3' },
      field('技能组 Group', group),
      field('最低级别 Min level', h('input', { name: 'min_level', type: 'number', min: 0, max: 1000, step: 1, value: rule ? rule.min_level : 0 })),
      field('排队优先级 Priority', h('input', { name: 'queue_priority', type: 'number', min: -1000, max: 1000, step: 1, value: rule ? rule.queue_priority : 0 }))),
    rule ? null : field('位置 Position（可选）', h('input', { name: 'position', type: 'number', min: 1, step: 1, placeholder: '默认放在最后' })),
  ], rule ? '保存' : '创建', async (fd) => {
    const conds = [...rows.querySelectorAll('.cond')].map((r) => {
      const op = $('.c-op', r).value;
      return { field: $('.c-field', r).value.trim(), op, value: parseValue($('.c-value', r).value, op) };
    });
    if (!conds.length) throw new Error('至少需要一个条件');
    const body = {
      name: String(fd.get('name')).trim(), match: { [fd.get('combine')]: conds }, group: fd.get('group'),
      min_level: Number(fd.get('min_level') || 0), queue_priority: Number(fd.get('queue_priority') || 0),
    };
    if (!rule && fd.get('position')) body.position = Number(fd.get('position'));
    if (rule) await api(`routing/rules/${encodeURIComponent(rule.id)}`, { method: 'PUT', body });
    else await api('routing/rules', { method: 'POST', body });
    await done();
  }, true);
}
