// 知识库 Knowledge base: paged articles, create/edit/delete, import a JSON or CSV file, try a question on the bot.

import { bytes, stamp } from '../core/format.js';
import { h, icon, kv } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, confirmButton, fail, field, formDialog, pageHead, table } from './forms.js';

export function adminKb(body) {
  const err = alertBox('page-error');
  const list = h('div', { class: 'kb-list' }, h('p', { class: 'muted' }, '加载中…'));
  const pager = h('div', { class: 'pager' });
  const reload = async (index = S.admin.kbCursors.length - 1) => {
    try {
      const cursor = S.admin.kbCursors[index];
      const page = await api(`kb/articles?limit=20${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      S.admin.kbCursors.length = index + 1;
      if (page.next_cursor) S.admin.kbCursors.push(page.next_cursor);
      const more = !!page.next_cursor;
      err.textContent = '';
      list.replaceChildren(table('kb-table', ['ID', '问题', '相似问法', '分类', '更新时间', ''],
        (page.items || []).map((a) => h('tr', { dataset: { articleId: a.id } },
          h('td', {}, h('code', {}, a.id)), h('td', { class: 'question' }, a.question),
          h('td', { class: 'muted' }, (a.similar || []).length ? `${a.similar.length} 条` : '—'),
          h('td', {}, a.category || '—'), h('td', {}, stamp(a.updated_at)),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', class: 'small edit', onclick: () => articleDialog(a, () => reload(index)) }, '编辑'),
            confirmButton('删除', 'danger delete', async () => {
              try { await api(`kb/articles/${encodeURIComponent(a.id)}`, { method: 'DELETE' }); await reload(index); } catch (e) { fail(err, e); }
            })))),
        '知识库是空的：导入一个 JSON/CSV 文件，或新建文章'));
      pager.replaceChildren(
        h('button', { type: 'button', class: 'small prev', disabled: index === 0, onclick: () => reload(index - 1) }, '上一页'),
        h('span', { class: 'muted' }, `第 ${index + 1} 页`),
        h('button', { type: 'button', class: 'small next', disabled: !more, onclick: () => reload(index + 1) }, '下一页'));
    } catch (e) { fail(err, e); }
  };
  S.admin.kbCursors = [null];

  // Try a question: what the bot would answer, from which article, how sure, and whether it hands off.
  const q = h('input', { name: 'question', required: true, maxlength: 5000, placeholder: '输入一个访客可能问的问题，如：怎么退货？' });
  const tryOut = h('div', { class: 'try-result', 'aria-live': 'polite' });
  const tryForm = h('form', { class: 'inline-form kb-try' }, q, h('button', { type: 'submit', class: 'primary' }, '试一试'));
  tryForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    tryOut.replaceChildren(h('p', { class: 'muted' }, '正在询问机器人…'));
    try {
      const r = await api('bot/ask', { method: 'POST', body: { question: q.value.trim() } });
      const conf = typeof r.confidence === 'number' ? r.confidence : 0;
      tryOut.replaceChildren(
        h('div', { class: 'try-verdict' },
          h('span', { class: `pill ${r.handoff ? 'warn handoff' : 'st-active answered'}` }, r.handoff ? '将转人工 (handoff)' : '机器人直接回答'),
          h('span', { class: `confidence${conf < 0.7 ? ' low' : ''}` }, `置信度 ${(conf * 100).toFixed(1)}%`)),
        h('dl', {},
          kv('答案', r.answer ? h('span', { class: 'answer' }, r.answer) : null, 'answer-row'),
          kv('文章 ID', r.article_id ? h('code', { class: 'article-id' }, r.article_id) : null),
          kv('转人工', r.handoff ? '是' : '否')));
    } catch (e) { const box = alertBox(); fail(box, e); tryOut.replaceChildren(box); }
  });

  // Import: the §7 file as multipart `file`; the answer counts what was created and updated.
  const file = h('input', { type: 'file', name: 'file', hidden: true, accept: '.json,.csv,application/json,text/csv' });
  const fileName = h('span', { class: 'file-name muted' }, '未选择文件');
  const showName = () => { fileName.textContent = file.files[0] ? `${file.files[0].name} · ${bytes(file.files[0].size)}` : '未选择文件'; };
  file.addEventListener('change', showName);
  const importOut = h('div', { class: 'import-result', 'aria-live': 'polite' });
  const importForm = h('form', { class: 'inline-form kb-import' }, file,
    h('button', { type: 'button', class: 'pick-file', onclick: () => file.click() }, icon('file'), '选择文件'), fileName,
    h('button', { type: 'submit', class: 'primary' }, '导入'));
  importForm.addEventListener('reset', () => setTimeout(showName));
  importForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!file.files[0]) { importOut.replaceChildren(h('p', { class: 'error' }, '请先选择一个 JSON 或 CSV 文件')); return; }
    const form = new FormData();
    form.append('file', file.files[0], file.files[0].name);
    importOut.replaceChildren(h('p', { class: 'muted' }, '正在导入…'));
    try {
      const r = await api('kb/import', { method: 'POST', form });
      importOut.replaceChildren(h('p', { class: 'ok' }, `导入完成：新增 ${r.created} 条，更新 ${r.updated} 条`));
      importForm.reset();
      await reload(0);
    } catch (e) { const box = alertBox(); fail(box, e); importOut.replaceChildren(box); }
  });

  body.replaceChildren(
    pageHead('知识库', 'Knowledge base', h('button', { type: 'button', class: 'primary add-article', onclick: () => articleDialog(null, () => reload(0)) }, '新建文章')),
    err,
    h('div', { class: 'grid2 admin-grid' },
      h('section', { class: 'card' }, h('h4', {}, '试一试 Try a question', h('small', {}, 'POST /bot/ask')), tryForm, tryOut),
      h('section', { class: 'card' }, h('h4', {}, '导入 Import', h('small', {}, 'JSON 或 CSV：id,question,similar,answer,category')), importForm, importOut)),
    h('section', { class: 'card' }, h('h4', {}, '文章 Articles'), list, pager));
  reload(0);
}

/** The article editor: `article` to edit one, or null for a new one, prefilled from `draft` ({question, similar})
 *  when the 知识库缺口 page starts an article from a group of visitors' wordings. */
export function articleDialog(article, done, draft = null) {
  const isNew = !article;
  const source = article || draft;
  formDialog('article-dialog', isNew ? '新建文章' : `编辑文章 · ${article.id}`, [
    isNew ? field('ID（外部键，导入同一 ID 会更新）', h('input', { name: 'id', required: true, maxlength: 200, placeholder: 'refund-policy' })) : h('p', { class: 'muted' }, h('code', {}, article.id)),
    field('标准问题 Question', h('input', { name: 'question', required: true, maxlength: 1000, value: source ? source.question : '' })),
    field('相似问法 Similar（每行一条）', h('textarea', { name: 'similar', rows: 3 }, source ? (source.similar || []).join('\n') : '')),
    field('答案 Answer', h('textarea', { name: 'answer', rows: 5, required: true, maxlength: 10000 }, article ? article.answer : '')),
    field('分类 Category', h('input', { name: 'category', maxlength: 100, value: article ? article.category || '' : '' })),
  ], isNew ? '创建' : '保存', async (fd) => {
    const body = {
      question: String(fd.get('question')).trim(), answer: String(fd.get('answer')).trim(), category: String(fd.get('category') || '').trim(),
      similar: String(fd.get('similar') || '').split('\n').map((x) => x.trim()).filter(Boolean),
    };
    if (isNew) await api('kb/articles', { method: 'POST', body: { id: String(fd.get('id')).trim(), ...body } });
    else await api(`kb/articles/${encodeURIComponent(article.id)}`, { method: 'PUT', body });
    await done();
  }, true);
}
