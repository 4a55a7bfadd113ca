// New-chat alerts: a short beep and, when the console is in the background, a desktop notification.

import { toast } from '../core/dom.js';
import { S } from '../core/state.js';
import { visitorName } from '../core/conversations.js';
import { openChat } from './chat.js';
import { renderHeader } from '../shell.js';

function beep() {
  if (!S.audio) return;
  try {
    const ctx = S.audio;
    const now = ctx.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.16);
      gain.gain.exponentialRampToValueAtTime(0.18, now + i * 0.16 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.16 + 0.15);
      osc.connect(gain).connect(ctx.destination);
      osc.start(now + i * 0.16);
      osc.stop(now + i * 0.16 + 0.16);
    }
  } catch { /* no sound is fine */ }
}

/** Called from a click: browsers only allow notification prompts and audio after a user gesture. */
export async function enableAlerts() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (Ctx && !S.audio) S.audio = new Ctx();
    if (S.audio && S.audio.state === 'suspended') await S.audio.resume();
  } catch { S.audio = null; }
  if ('Notification' in window && Notification.permission === 'default') {
    try { await Notification.requestPermission(); } catch { /* ignored */ }
  }
  beep();
  renderHeader();
  toast(alertsOn() ? '新会话提醒已开启' : '已开启提示音；浏览器通知未获授权');
}

export const alertsOn = () => 'Notification' in window && Notification.permission === 'granted';

export function notifyAssigned(c) {
  beep();
  const name = visitorName(c);
  if (alertsOn() && (document.hidden || !document.hasFocus())) {
    try {
      const n = new Notification('新会话分配', { body: `${name}${c.profile && c.profile.note ? '（转接）' : ''} · ${c.sid}`, tag: c.sid });
      n.onclick = () => { window.focus(); openChat(c.sid); n.close(); };
    } catch { /* some browsers only allow notifications from a service worker */ }
  }
}
