// HTTP: the public API under /api/v1 with the agent's bearer token, its errors as ApiError, attachments as blob URLs.

import { S } from './state.js';
import { EXPIRED, emit } from './events.js';
import { backoffMs } from './backoff.js';

const API = '/api/v1';
const READ_TRIES = 4; // a read answered 503 `unavailable` (the database away) is tried this many times in all

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(path, options = {}) {
  for (let tries = 1; ; tries++) {
    try {
      return await request(path, options);
    } catch (e) {
      // Reads are safe to repeat; a write that met `unavailable` is reported, the person decides.
      if (e.code !== 'unavailable' || (options.method || 'GET') !== 'GET' || tries >= READ_TRIES) throw e;
      await new Promise((resolve) => setTimeout(resolve, backoffMs(e.retryAfter, tries)));
    }
  }
}

async function request(path, { method = 'GET', body, form, raw } = {}) {
  const headers = {};
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  let r;
  try {
    r = await fetch(/^(\/|https?:)/.test(path) ? path : `${API}/${path}`, { method, headers, body: payload, cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', '网络不可用，请稍后再试');
  }
  // A 401 anywhere means the token is gone (expired, or logged out elsewhere): back to the login screen.
  if (r.status === 401 && S.token && !/auth\/(login|logout)$/.test(path)) { emit(EXPIRED, '登录已过期，请重新登录'); throw new ApiError(401, 'unauthorized', '登录已过期'); }
  if (raw) {
    if (!r.ok) throw new ApiError(r.status, 'http_' + r.status, r.statusText);
    return r;
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const err = (data && data.error) || {};
    const failed = new ApiError(r.status, err.code || 'http_' + r.status, err.message || `请求失败 (${r.status})`);
    failed.retryAfter = Number(r.headers.get('Retry-After')) || 0;
    throw failed;
  }
  return data;
}

/** Attachments need the bearer token, so they are fetched and shown through object URLs (cached per URL). */
export function blobUrl(url) {
  if (!S.blobs.has(url)) {
    S.blobs.set(url, api(url, { raw: true }).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
    S.blobs.get(url).catch(() => S.blobs.delete(url));
  }
  return S.blobs.get(url);
}
