// S, the console's one state object: everything that changes while the page is open lives here, so any module can
// read it and nothing else holds state between calls. Modules change it in place; `logout` resets it.
// window.KefuConsole.state exposes it for debugging and tests (read only).

export const TOKEN_KEY = 'kefu.console.token';
export const PROFILE_KEY = 'kefu.console.profiles';

export const S = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null, // the agent record from login / ready
  status: 'offline',
  convs: new Map(), // session_id -> Conv (the agent's own chats, live over the socket)
  tab: 'mine',
  current: null, // {sid, live: bool}
  archive: null, // the archive record shown read-only
  queue: [], all: [],
  canned: [], cannedState: 'unknown', // 'unknown' | 'ok' | 'missing'
  outbox: new Map(), // client_msg_id -> {sid, msg_type, content, attachment_id}: sent until the server echoes it
  ws: null, conn: 'idle', attempts: 0, retryTimer: null, pingTimer: null, pongTimer: null,
  serverPauseMs: 0, // the pause the server asked for (`unavailable`) before the next reconnect
  syncing: new Set(),
  blobs: new Map(), // url -> Promise<object URL>
  audio: null,
  lastTypingSent: 0,
  view: 'chat',
  queueTimer: null, queueSoonTimer: null, // the queue list's slow poll and its debounced refresh
  composers: new Map(), // session_id -> composer element: drafts survive re-renders and switching chats
  shownProfile: null, // the profile the visitor panel was last drawn from
  archiveNotes: [], // the notes of the archive record shown read-only
  historyFor: null, // whose other conversations the visitor panel is loading
  taught: new Map(), // 'session_id:seq' -> the article a handed-off question was added to (chats/teach.js)
  agents: null, // the app's agents (admins only; GET /agents), for names and the transfer list
  names: new Map(), // agent_id -> name, as frames and notes mention colleagues
  dashboard: { from: null, to: null, data: null, roi: { perChat: 15, monthly: 8000, revenue: 0 } },
  // the admin pages' groups, KB page cursors, open webhook log, the gaps page's date range (yyyy-mm-dd, '' = open)
  admin: { groups: [], kbCursors: [null], webhook: null, gaps: { from: '', to: '' } },
};

export const isAdmin = () => S.me && S.me.role === 'admin';
