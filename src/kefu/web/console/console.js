// kefu agent console (客服工作台): native ES modules, no framework, no build step (docs/console.md shows the map).
// It speaks only the public contract: /api/v1 over HTTP and /ws/agent over WebSocket.
// Text from visitors and agents is always inserted as text (textContent / text nodes), never as HTML.
//
// This is the entry module and the only one that does anything when loaded: the others only define functions
// and constants, so they may import each other in any order (even in a cycle) without running into one another.

import { S } from './core/state.js';
import { EXPIRED, FRAME } from './core/events.js';
import { connect, dropSocket, setConn } from './core/connection.js';
import { onFrame } from './chats/frames.js';
import { tickWaits } from './chats/list.js';
import { markRead, renderTyping } from './chats/chat.js';
import { logout, renderLogin } from './session.js';
import { route, start } from './shell.js';

addEventListener('hashchange', route);
addEventListener('offline', () => { if (S.token) { dropSocket(); setConn('offline'); } });
addEventListener('online', () => { if (S.token) { S.attempts = 0; dropSocket(); connect(); } });
document.addEventListener('visibilitychange', markRead);
addEventListener('focus', markRead);
addEventListener(FRAME, (ev) => onFrame(ev.detail));
addEventListener(EXPIRED, (ev) => logout(ev.detail));
setInterval(() => { tickWaits(); renderTyping(); }, 1000);

window.KefuConsole = { state: S }; // for debugging and tests: read-only use

if (S.token) start(); else renderLogin();
