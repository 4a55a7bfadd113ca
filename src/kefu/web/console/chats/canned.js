// Canned responses (快捷回复): loading them, matching `/shortcut` in the composer, and the dialog that manages them.

import { h } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { api } from '../core/api.js';
import { renderComposerHint } from './composer.js';

export async function loadCanned() {
  try {
    const data = await api('canned-responses');
    S.canned = (data.items || []).slice().sort((a, b) => a.shortcut.localeCompare(b.shortcut));
    S.cannedState = 'ok';
  } catch (e) {
    S.canned = [];
    S.cannedState = e.status === 404 || e.status === 405 ? 'missing' : 'unknown';
  }
}

export function cannedMatches(text) {
  const m = /^\/(\S*)$/.exec(text);
  if (!m) return [];
  const q = m[1].toLowerCase();
  return S.canned.filter((c) => c.shortcut.replace(/^\//, '').toLowerCase().startsWith(q)).slice(0, 8);
}

export async function openCannedDialog() {
  await loadCanned();
  const list = h('ul', { class: 'canned-list' });
  const err = h('p', { class: 'error', role: 'alert' });
  const draw = () => {
    if (S.cannedState === 'missing') { list.replaceChildren(h('li', { class: 'muted' }, '服务器尚未提供 /api/v1/canned-responses 接口')); return; }
    list.replaceChildren(...(S.canned.length ? S.canned.map((cr) => h('li', {},
      h('code', {}, '/' + cr.shortcut.replace(/^\//, '')), h('span', { class: 'text' }, cr.text), h('small', {}, cr.scope === 'app' ? '团队' : '个人'),
      h('button', { type: 'button', class: 'ghost small', onclick: async () => {
        try { await api(`canned-responses/${encodeURIComponent(cr.id)}`, { method: 'DELETE' }); await loadCanned(); draw(); renderComposerHint(); } catch (e) { err.textContent = e.message; }
      } }, '删除'))) : [h('li', { class: 'muted' }, '还没有快捷回复')]));
  };
  draw();
  const form = h('form', { class: 'canned-form' },
    h('input', { name: 'shortcut', required: true, placeholder: '快捷词，如 hi', maxlength: 50 }),
    h('input', { name: 'text', required: true, placeholder: '回复内容', maxlength: 5000 }),
    h('select', { name: 'scope' }, h('option', { value: 'agent' }, '个人'), isAdmin() ? h('option', { value: 'app' }, '团队') : null),
    h('button', { type: 'submit', class: 'primary' }, '添加'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    try {
      await api('canned-responses', { method: 'POST', body: { shortcut: fd.get('shortcut').trim().replace(/^\//, ''), text: fd.get('text').trim(), scope: fd.get('scope') } });
      form.reset(); err.textContent = '';
      await loadCanned(); draw(); renderComposerHint();
    } catch (e) { err.textContent = e.message; }
  });
  const dialog = h('dialog', { id: 'canned-dialog', class: 'modal wide' },
    h('h3', {}, '快捷回复 Canned responses'),
    h('p', { class: 'muted' }, '在输入框中键入 /快捷词，按 Tab 或 Enter 插入。'),
    list, S.cannedState === 'missing' ? null : form, err,
    h('div', { class: 'buttons' }, h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '关闭')));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
