// 转接: hand a chat to a colleague or a group's queue, with an internal note only agents see.

import { STATUS_TEXT } from '../core/text.js';
import { $, h, toast } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { api } from '../core/api.js';
import { loadAgents } from '../core/colleagues.js';
import { wsSend } from '../core/connection.js';

export async function openTransferDialog(c) {
  let agents = [];
  let groups = new Set([...(S.me.groups || []), 'default', c.rec.group].filter(Boolean));
  if (isAdmin()) {
    try {
      agents = (await loadAgents()).filter((a) => a.agent_id !== S.me.agent_id);
      const gs = await api('groups');
      for (const g of gs.items || []) groups.add(g.name || g);
    } catch (e) { toast(e.message, 'error'); }
  }
  const select = h('select', { name: 'target', required: true },
    agents.length ? h('optgroup', { label: '客服 Agents' }, ...agents.map((a) => h('option', { value: 'agent:' + a.agent_id, disabled: a.status !== 'online' ? true : null },
      `${a.name || a.email} · ${STATUS_TEXT[a.status] || a.status} · ${a.load}/${a.max_concurrent}`))) : null,
    h('optgroup', { label: '技能组 Groups（进入排队）' }, ...[...groups].map((g) => h('option', { value: 'group:' + g }, g))));
  const first = [...select.options].find((o) => !o.disabled);
  if (first) first.selected = true;
  const note = h('textarea', { name: 'note', rows: 4, maxlength: 5000, placeholder: '内部备注：问题进展、已尝试的方案…（访客看不到）' });
  const err = h('p', { class: 'error', role: 'alert' });
  const dialog = h('dialog', { id: 'transfer-dialog', class: 'modal' },
    h('form', { method: 'dialog' },
      h('h3', {}, `转接会话 ${c.sid}`),
      h('label', {}, '转给', select),
      h('label', {}, '备注 Note', note),
      err,
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '取消'),
        h('button', { type: 'submit', class: 'primary' }, '确认转接'))));
  $('form', dialog).addEventListener('submit', (ev) => {
    ev.preventDefault();
    const [kind, id] = select.value.split(/:(.*)/s);
    const frame = { type: 'transfer', ref: 'transfer:' + c.sid, session_id: c.sid };
    if (kind === 'agent') frame.to_agent_id = id; else frame.to_group = id;
    if (note.value.trim()) frame.note = note.value.trim();
    if (!wsSend(frame)) { err.textContent = '未连接到服务器'; return; }
    dialog.close();
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  note.focus();
}
