// A classic script that runs before the console's modules load. If they cannot all be loaded — the page is from a
// release this server no longer has, which it answers with 404 rather than mix two releases — say so, instead of
// leaving "loading" on the screen. Error events do not bubble, so this listens in the capture phase.
document.addEventListener('error', (ev) => {
  if (!(ev.target instanceof HTMLScriptElement) || ev.target.type !== 'module') return;
  const app = document.getElementById('app');
  if (app) app.textContent = '客服工作台已更新，请刷新页面。';
}, true);
