// Logging in and out: the login screen, 退出 (the server revokes the token), and what a lost token does.

import { $, h } from './core/dom.js';
import { PROFILE_KEY, S, TOKEN_KEY } from './core/state.js';
import { api } from './core/api.js';
import { dropSocket } from './core/connection.js';
import { start } from './shell.js';

/** 退出: the server revokes the token (POST /auth/logout), then this tab forgets it. */
export async function signOut() {
  if (!S.token) return;
  const btn = $('.topbar .logout');
  if (btn) btn.disabled = true;
  // The server closes this token's sockets (4401) on logout: drop ours first so that is not taken for an expiry.
  dropSocket();
  clearTimeout(S.retryTimer);
  let problem = '';
  try {
    await api('auth/logout', { method: 'POST' });
  } catch (e) {
    // 401: the token was already dead. Anything else: it may still be valid until it expires; say so.
    if (e.status !== 401) problem = `已在本机退出，但服务器未确认注销：${e.message}`;
  }
  logout(problem);
}

export function logout(reason) {
  if (!S.token && !S.me) { if (reason) renderLogin(reason); return; } // already logged out
  S.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(PROFILE_KEY);
  dropSocket();
  clearTimeout(S.retryTimer);
  clearTimeout(S.queueTimer);
  clearTimeout(S.queueSoonTimer);
  for (const p of S.blobs.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
  S.composers.clear();
  Object.assign(S, { me: null, convs: new Map(), current: null, archive: null, queue: [], all: [], outbox: new Map(), blobs: new Map(), attempts: 0, conn: 'idle' });
  renderLogin(reason);
}

export function renderLogin(message) {
  const app = $('#app');
  app.className = 'login-page';
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  const lastApp = localStorage.getItem('kefu.console.app') || new URLSearchParams(location.search).get('app_id') || '';
  const form = h('form', { id: 'login', class: 'login-card', autocomplete: 'on' },
    h('div', { class: 'brand big' }, h('span', { class: 'logo' }, '客'), h('div', {}, h('strong', {}, 'kefu 客服工作台'), h('small', {}, 'Agent Console'))),
    h('label', {}, '应用 ID (App ID)', h('input', { name: 'app_id', required: true, value: lastApp, placeholder: 'app_…', autocomplete: 'organization' })),
    h('label', {}, '邮箱 Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username' })),
    h('label', {}, '密码 Password', h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' })),
    err,
    h('button', { type: 'submit', class: 'primary wide' }, '登录'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const btn = $('button', form);
    btn.disabled = true;
    err.textContent = '';
    try {
      const data = await api('auth/login', { method: 'POST', body: { app_id: fd.get('app_id').trim(), email: fd.get('email').trim(), password: fd.get('password') } });
      S.token = data.token;
      S.me = data.agent;
      sessionStorage.setItem(TOKEN_KEY, data.token);
      localStorage.setItem('kefu.console.app', fd.get('app_id').trim());
      start();
    } catch (e) {
      err.textContent = e.code === 'invalid_credentials' || e.status === 401 ? '应用 ID、邮箱或密码不正确' : e.message;
      btn.disabled = false;
    }
  });
  app.replaceChildren(form);
  $('input[name=' + (lastApp ? 'email' : 'app_id') + ']', form).focus();
}
