// The composer: replies (text, images, files) and internal notes, with `/` canned responses. A reply goes into
// S.outbox and over the socket; the outbox keeps it until the server echoes it, across reconnects.

import { uid } from '../core/format.js';
import { $, h, icon, toast } from '../core/dom.js';
import { S } from '../core/state.js';
import { isOpen } from '../core/conversations.js';
import { api } from '../core/api.js';
import { wsSend } from '../core/connection.js';
import { cannedMatches } from './canned.js';
import { messageEl, redrawTimeline, scrollDown } from './timeline.js';

const TYPING_EVERY_MS = 3000;

export function composerFor(c) {
  if (!S.composers.has(c.sid)) S.composers.set(c.sid, composer(c));
  for (const sid of S.composers.keys()) if (!isOpen(S.convs.get(sid))) S.composers.delete(sid);
  return S.composers.get(c.sid);
}

const REPLY_HINT = '输入回复，Enter 发送，Shift+Enter 换行；输入 / 使用快捷回复';
const NOTE_HINT = '写内部备注，Enter 保存 —— 仅客服可见，访客看不到';

function composer(c) {
  const box = h('textarea', { rows: 3, placeholder: REPLY_HINT, 'aria-label': '回复' });
  const suggest = h('ul', { class: 'suggest', hidden: true, role: 'listbox' });
  const file = h('input', { type: 'file', hidden: true, accept: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain' });
  let pick = 0;
  const matches = () => (S.cannedState === 'ok' ? cannedMatches(box.value) : []);
  const showSuggest = () => {
    const list = matches();
    suggest.hidden = !list.length;
    pick = Math.min(pick, Math.max(0, list.length - 1));
    suggest.replaceChildren(...list.map((cr, i) => h('li', {
      class: i === pick ? 'on' : '', role: 'option',
      onmousedown: (e) => { e.preventDefault(); insertCanned(cr); },
    }, h('code', {}, '/' + cr.shortcut.replace(/^\//, '')), h('span', {}, cr.text), cr.scope === 'agent' ? h('small', {}, '个人') : h('small', {}, '团队'))));
  };
  const insertCanned = (cr) => { box.value = cr.text; suggest.hidden = true; box.focus(); };
  const noting = () => wrap.dataset.mode === 'note';
  const submit = () => (noting() ? sendNote(c, box, wrap) : sendText(c, box));
  box.addEventListener('input', () => {
    pick = 0;
    showSuggest();
    const now = Date.now();
    // The visitor sees "typing" only for replies: writing a note is not something they hear about.
    if (!noting() && box.value && now - S.lastTypingSent > TYPING_EVERY_MS) { S.lastTypingSent = now; wsSend({ type: 'typing', session_id: c.sid }); }
  });
  box.addEventListener('keydown', (e) => {
    const list = matches();
    if (list.length && !suggest.hidden) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') { e.preventDefault(); pick = (pick + (e.key === 'ArrowDown' ? 1 : list.length - 1)) % list.length; showSuggest(); return; }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && !e.isComposing)) { e.preventDefault(); insertCanned(list[pick]); return; }
      if (e.key === 'Escape') { suggest.hidden = true; return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  file.addEventListener('change', () => { if (file.files[0]) sendFile(c, file.files[0]); file.value = ''; });
  const attach = h('button', { type: 'button', class: 'ghost attach', title: '发送图片或文件', onclick: () => file.click() }, icon('clip'), '图片/文件');
  const send = h('button', { type: 'button', class: 'primary send', onclick: submit }, '发送');
  const modeButton = (mode, label) => h('button', {
    type: 'button', role: 'tab', class: `mode${mode === 'reply' ? ' on' : ''}`, dataset: { mode }, 'aria-selected': mode === 'reply' ? 'true' : 'false',
    onclick: () => setMode(mode),
  }, label);
  const modes = h('div', { class: 'composer-modes', role: 'tablist', 'aria-label': '回复或内部备注' },
    modeButton('reply', '回复访客'), modeButton('note', '内部备注'));
  const setMode = (mode) => {
    wrap.dataset.mode = mode;
    wrap.classList.toggle('note-mode', mode === 'note');
    for (const b of modes.children) { b.classList.toggle('on', b.dataset.mode === mode); b.setAttribute('aria-selected', String(b.dataset.mode === mode)); }
    box.placeholder = mode === 'note' ? NOTE_HINT : REPLY_HINT;
    box.setAttribute('aria-label', mode === 'note' ? '内部备注' : '回复');
    send.textContent = mode === 'note' ? '保存备注' : '发送';
    attach.hidden = mode === 'note';
    const err = $('.note-error', wrap);
    if (err) err.textContent = '';
    box.focus();
  };
  const wrap = h('div', { class: 'composer', dataset: { mode: 'reply' } },
    suggest,
    modes,
    box,
    h('div', { class: 'composer-bar' },
      attach,
      file,
      h('span', { class: 'hint' }, ''),
      h('span', { class: 'error note-error', role: 'alert' }),
      send));
  return wrap;
}

/** An internal note goes over HTTP, never as a message: it has no seq and never reaches the visitor. */
async function sendNote(c, box, wrap) {
  const text = box.value.trim();
  if (!text || wrap.dataset.busy) return;
  const err = $('.note-error', wrap);
  wrap.dataset.busy = '1';
  err.textContent = '';
  try {
    const n = await api(`conversations/${encodeURIComponent(c.sid)}/notes`, { method: 'POST', body: { content: text } });
    if (box.value.trim() === text) box.value = '';
    if (n && n.note_id && !c.notes.has(n.note_id)) { c.notes.set(n.note_id, n); redrawTimeline(c, true); }
  } catch (e) {
    err.textContent = '备注未保存：' + e.message; // the text stays in the box
  } finally {
    delete wrap.dataset.busy;
  }
}

export function renderComposerHint() {
  const hint = $('.composer .hint');
  if (hint) hint.textContent = S.cannedState === 'missing' ? '快捷回复接口暂不可用' : S.canned.length ? `快捷回复 ${S.canned.length} 条，输入 / 调用` : '';
}

function queueSend(c, msg) {
  const cmid = uid();
  S.outbox.set(cmid, { sid: c.sid, ...msg });
  const box = $('.messages');
  if (box) box.append(messageEl(c, { ...msg, client_msg_id: cmid, sender: 'agent', sender_id: S.me.agent_id, timestamp: new Date().toISOString() }, true));
  scrollDown(true);
  // Offline, the outbox keeps it: after the reconnect and sync it goes again under the same client_msg_id.
  wsSend({ type: 'send', ref: 'send:' + cmid, session_id: c.sid, client_msg_id: cmid, ...msg });
}

function sendText(c, box) {
  const text = box.value.trim();
  if (!text) return;
  box.value = '';
  $('.suggest') && ($('.suggest').hidden = true);
  queueSend(c, { msg_type: 'text', content: text });
}

async function sendFile(c, f) {
  const form = new FormData();
  form.append('file', f, f.name);
  toast(`正在上传 ${f.name}…`);
  try {
    const up = await api('uploads', { method: 'POST', form });
    const isImage = /^image\//.test(up.content_type);
    queueSend(c, { msg_type: isImage ? 'image' : 'file', content: '', attachment_id: up.attachment_id, attachment: up });
  } catch (e) {
    toast(e.code === 'too_large' ? '文件过大' : e.code === 'unsupported_type' ? '不支持的文件类型' : e.message, 'error');
  }
}
