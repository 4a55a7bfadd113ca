// API 密钥 API keys: list, create (the key is shown once), revoke.

import { stamp } from '../core/format.js';
import { h } from '../core/dom.js';
import { api } from '../core/api.js';
import { alertBox, confirmButton, fail, pageHead, secretBox, table } from './forms.js';

export function adminKeys(body) {
  const err = alertBox('page-error');
  const fresh = h('div', { class: 'fresh' });
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    try {
      const keys = await api('api-keys');
      err.textContent = '';
      list.replaceChildren(table('keys-table', ['名称', '前缀', '创建时间', '状态', ''],
        (keys.items || []).map((k) => h('tr', { dataset: { keyId: k.id, name: k.name } },
          h('td', { class: 'name' }, k.name), h('td', {}, h('code', {}, k.prefix || '')), h('td', {}, stamp(k.created_at)),
          h('td', { class: 'state' }, k.revoked_at ? h('span', { class: 'pill' }, `已吊销 ${stamp(k.revoked_at)}`) : h('span', { class: 'pill st-active' }, '有效')),
          h('td', { class: 'row-actions' }, k.revoked_at ? null : confirmButton('吊销', 'danger revoke', async () => {
            try { await api(`api-keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' }); await reload(); } catch (e) { fail(err, e); }
          })))),
        '还没有 API 密钥'));
    } catch (e) { fail(err, e); }
  };
  const form = h('form', { class: 'inline-form key-form' },
    h('input', { name: 'name', required: true, maxlength: 200, placeholder: '用途，如 CRM 同步' }),
    h('button', { type: 'submit', class: 'primary' }, '创建密钥'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const k = await api('api-keys', { method: 'POST', body: { name: String(new FormData(form).get('name')).trim() } });
      form.reset();
      fresh.replaceChildren(secretBox('new-key', `新密钥 · ${k.name}`, k.key));
      await reload();
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('API 密钥', 'API keys'),
    h('p', { class: 'muted page-note' }, '服务器端集成使用：Authorization: Bearer <key>。可调用检索、导出、统计与访客标签同步等接口。'),
    h('div', { class: 'card' }, form), err, fresh, list);
  reload();
}
