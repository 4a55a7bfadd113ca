// The admin pages' building blocks: page heads, tables, form dialogs, confirm-twice buttons, shown-once secrets,
// and API errors shown where the admin acted, in the server's words with its code.

import { $, h } from '../core/dom.js';

/** An API error as the server worded it, with its code; never swallowed. */
export function fail(box, e) {
  const code = e && e.code && !/^http_/.test(e.code) ? e.code : null;
  box.replaceChildren((e && e.message) || String(e), code ? h('code', { class: 'err-code' }, code) : '');
}

export const alertBox = (cls = '') => h('p', { class: `error ${cls}`.trim(), role: 'alert' });
export const field = (label, input, hint) => h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'hint' }, hint) : null);

export function pageHead(zh, en, ...actions) {
  return h('div', { class: 'page-head' }, h('h2', {}, zh, ' ', h('small', {}, en)), h('div', { class: 'page-actions' }, ...actions));
}

/** A button that asks for a second click within 4 s before it does something destructive. */
export function confirmButton(label, cls, action) {
  const btn = h('button', { type: 'button', class: `small ${cls}` }, label);
  btn.addEventListener('click', async () => {
    if (!btn.dataset.armed) {
      btn.dataset.armed = '1';
      btn.textContent = '确认？';
      setTimeout(() => { if (btn.isConnected && btn.dataset.armed) { delete btn.dataset.armed; btn.textContent = label; } }, 4000);
      return;
    }
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; }
  });
  return btn;
}

/** A modal form; `onSubmit(formData, form)` may throw (an API error or a plain Error): shown in the dialog. */
export function formDialog(id, title, fields, submitText, onSubmit, wide) {
  const err = alertBox();
  const form = h('form', { novalidate: false }, h('h3', {}, title), ...fields, err,
    h('div', { class: 'buttons' },
      h('button', { type: 'button', class: 'ghost', onclick: () => dialog.close() }, '取消'),
      h('button', { type: 'submit', class: 'primary' }, submitText)));
  const dialog = h('dialog', { id, class: `modal${wide ? ' wide' : ''}` }, form);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const btn = $('button[type=submit]', form);
    btn.disabled = true;
    err.textContent = '';
    try {
      await onSubmit(new FormData(form), form);
      dialog.close();
    } catch (e) {
      fail(err, e);
    } finally {
      btn.disabled = false;
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

export function table(cls, heads, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted empty-row' }, empty);
  return h('table', { class: `table ${cls}` }, h('thead', {}, h('tr', {}, ...heads.map((t) => h('th', {}, t)))), h('tbody', {}, ...rows));
}

/** A secret shown once: a highlighted box with a copy button. */
export function secretBox(cls, title, value) {
  const code = h('code', { class: 'secret-value' }, value);
  return h('div', { class: `card new-secret ${cls}`, role: 'status' },
    h('h4', {}, title, h('small', {}, '只显示这一次，请立即复制保存')),
    h('div', { class: 'secret-row' }, code,
      h('button', { type: 'button', class: 'small copy', onclick: async (ev) => {
        try { await navigator.clipboard.writeText(value); ev.target.textContent = '已复制'; } catch {
          const range = document.createRange(); range.selectNodeContents(code);
          getSelection().removeAllRanges(); getSelection().addRange(range);
          ev.target.textContent = '已选中，按 Ctrl+C';
        }
      } }, '复制')));
}
