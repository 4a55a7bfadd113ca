// Webhooks: list, add (the signing secret is shown once), delete, and each webhook's delivery log.

import { DELIVERY_TEXT } from '../core/text.js';
import { stamp } from '../core/format.js';
import { h } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, confirmButton, fail, pageHead, secretBox, table } from './forms.js';

const WEBHOOK_EVENTS = [
  'conversation.created', 'conversation.queued', 'conversation.assigned', 'conversation.transferred',
  'conversation.handoff', 'conversation.closed', 'message.created',
];

export function adminWebhooks(body) {
  const err = alertBox('page-error');
  const fresh = h('div', { class: 'fresh' });
  const list = h('div', { class: 'card' }, h('p', { class: 'muted' }, '加载中…'));
  const log = h('div', { class: 'deliveries' });
  S.admin.webhook = null;
  const reload = async () => {
    try {
      const hooks = (await api('webhooks')).items || [];
      err.textContent = '';
      list.replaceChildren(table('webhooks-table', ['URL', '事件', '创建时间', ''],
        hooks.map((w) => h('tr', { dataset: { webhookId: w.id }, class: S.admin.webhook === w.id ? 'selected' : '' },
          h('td', { class: 'url' }, w.url), h('td', {}, h('div', { class: 'tags' }, ...(w.events || []).map((e) => h('span', { class: 'tag client' }, e)))),
          h('td', {}, stamp(w.created_at)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small show-log', onclick: () => { S.admin.webhook = w.id; showLog(w); reload(); } }, '投递记录'),
            confirmButton('删除', 'danger delete', async () => {
              try {
                await api(`webhooks/${encodeURIComponent(w.id)}`, { method: 'DELETE' });
                if (S.admin.webhook === w.id) { S.admin.webhook = null; log.replaceChildren(); }
                await reload();
              } catch (e) { fail(err, e); }
            })))),
        '还没有 Webhook'));
    } catch (e) { fail(err, e); }
  };
  const showLog = async (w, cursor, rows = []) => {
    const logErr = alertBox();
    const head = h('h4', {}, `投递记录 · ${w.url}`,
      h('button', { type: 'button', class: 'small refresh-log', onclick: () => showLog(w) }, '刷新'));
    if (!cursor) log.replaceChildren(h('section', { class: 'card' }, head, h('p', { class: 'muted' }, '加载中…')));
    try {
      const page = await api(`webhooks/${encodeURIComponent(w.id)}/deliveries?limit=50${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      if (S.admin.webhook !== w.id) return;
      const all = rows.concat(page.items || []);
      log.replaceChildren(h('section', { class: 'card' }, head,
        table('deliveries-table', ['投递 ID', '事件', '状态', '尝试次数', '最后状态码', '创建时间', '送达时间'],
          all.map((d) => h('tr', { dataset: { deliveryId: d.delivery_id, status: d.status } },
            h('td', {}, h('code', {}, d.delivery_id)), h('td', { class: 'event' }, d.event),
            h('td', { class: 'status' }, h('span', { class: `pill dl-${d.status}` }, DELIVERY_TEXT[d.status] || d.status)),
            h('td', { class: 'attempts' }, String(d.attempts)), h('td', { class: 'code' }, d.last_status_code === null || d.last_status_code === undefined ? '—' : String(d.last_status_code)),
            h('td', {}, stamp(d.created_at)), h('td', {}, stamp(d.delivered_at)))),
          '还没有投递：有订阅的事件发生时会出现在这里'),
        page.next_cursor ? h('button', { type: 'button', class: 'small more', onclick: () => showLog(w, page.next_cursor, all) }, '加载更多') : null,
        logErr));
    } catch (e) {
      fail(logErr, e);
      log.replaceChildren(h('section', { class: 'card' }, head, logErr));
    }
  };
  const events = h('div', { class: 'checks events' }, ...WEBHOOK_EVENTS.map((e) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'events', value: e, checked: e === 'conversation.created' || e === 'message.created' }), e)));
  const form = h('form', { class: 'webhook-form' },
    h('div', { class: 'inline-form' },
      h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/kefu/webhook' }),
      h('input', { name: 'secret', minlength: 16, maxlength: 200, placeholder: '签名密钥（可选，至少 16 位；留空自动生成）' }),
      h('button', { type: 'submit', class: 'primary' }, '添加 Webhook')),
    events);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const bodyOut = { url: String(fd.get('url')).trim(), events: fd.getAll('events') };
    if (fd.get('secret')) bodyOut.secret = String(fd.get('secret'));
    try {
      const w = await api('webhooks', { method: 'POST', body: bodyOut });
      form.reset();
      fresh.replaceChildren(secretBox('new-webhook', `签名密钥 · ${w.url}`, w.secret));
      S.admin.webhook = w.id;
      await reload();
      showLog(w);
    } catch (e) { fail(err, e); }
  });
  body.replaceChildren(pageHead('Webhooks', 'Webhooks'),
    h('p', { class: 'muted page-note' }, '事件以 POST 推送到你的地址，附 X-Kefu-Signature: sha256=<HMAC>；失败会按指数退避重试 24 小时。'),
    h('div', { class: 'card' }, form), err, fresh, list, log);
  reload();
}
