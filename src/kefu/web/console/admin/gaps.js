// 知识库缺口 Knowledge-base gaps (protocol §11): the questions the bot handed off or got 👎 for, grouped by meaning,
// largest group first. One click adds a visitor's wording to the bot's closest article (or to one picked from the
// list), or starts a new article from the group in the knowledge-base page's editor; the bot answers it at once.

import { pct } from '../core/format.js';
import { h } from '../core/dom.js';
import { S } from '../core/state.js';
import { api } from '../core/api.js';
import { alertBox, fail, pageHead } from './forms.js';
import { articleDialog } from './kb.js';
import { addSimilar, articlePicker, loadArticles } from './articles.js';

const DAY = 86400000;
const LIMIT = 50;

/** A date input's day as the instant its local midnight starts, or null when empty; `after` moves to the next day
 *  (the range's `to` is exclusive in the API and inclusive on the page). */
function dayStart(value, after) {
  if (!value) return null;
  const t = new Date(value + 'T00:00:00').getTime();
  return Number.isNaN(t) ? null : new Date(t + (after ? DAY : 0)).toISOString();
}

export function adminGaps(body) {
  const range = S.admin.gaps;
  const fromIn = h('input', { type: 'date', name: 'from', value: range.from });
  const toIn = h('input', { type: 'date', name: 'to', value: range.to });
  const err = alertBox('page-error');
  const list = h('div', { class: 'gaps-list', 'aria-live': 'polite' }, h('p', { class: 'muted' }, '加载中…'));
  const reload = async () => {
    const from = dayStart(range.from, false);
    const to = dayStart(range.to, true);
    err.textContent = '';
    if (from && to && from >= to) { err.textContent = '开始日期不能晚于结束日期 (from must not be after to)'; return; }
    list.dataset.loading = '1';
    const query = [`limit=${LIMIT}`, from && `from=${encodeURIComponent(from)}`, to && `to=${encodeURIComponent(to)}`].filter(Boolean).join('&');
    try {
      const [gaps, articles] = await Promise.all([api(`kb/gaps?${query}`), loadArticles()]);
      const items = gaps.items || [];
      list.replaceChildren(...(items.length ? items.map((g) => gapCard(g, articles, reload))
        : [h('div', { class: 'card empty-state' }, '这段时间没有知识库缺口：机器人没有转人工，也没有被评为“没帮助”', h('small', {}, 'No gaps in this period'))]));
    } catch (e) {
      fail(err, e);
      list.replaceChildren();
    } finally {
      delete list.dataset.loading;
    }
  };
  const form = h('form', { class: 'range gaps-range' },
    h('label', {}, '从 From', fromIn), h('label', {}, '到 To', toIn),
    h('button', { type: 'submit', class: 'primary' }, '查询'),
    h('button', { type: 'button', class: 'ghost all-time', onclick: () => { fromIn.value = ''; toIn.value = ''; form.requestSubmit(); } }, '全部时间'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    range.from = fromIn.value;
    range.to = toIn.value;
    reload();
  });
  body.replaceChildren(
    pageHead('知识库缺口', 'Knowledge-base gaps', h('button', { type: 'button', class: 'ghost refresh', onclick: () => reload() }, '刷新')),
    h('p', { class: 'muted page-note' }, '机器人转人工或被访客评为“没帮助”的问题，按意思分组，最多的在前。把访客的说法加到文章里，机器人下一个问题起就会回答。',
      h('br'), h('small', {}, 'Questions the bot handed off or got a thumbs-down for, grouped by meaning, largest first; a wording added to an article is answered from the next question on.')),
    form, err, list);
  reload();
}

/** One group: its wordings with counts, the bot's closest article now, and the actions that teach the bot. */
function gapCard(gap, articles, reload) {
  const wordings = gap.wordings && gap.wordings.length ? gap.wordings : [{ question: gap.question, count: gap.count }];
  const picker = articlePicker(articles, gap.article_id, 'target');
  const status = alertBox('gap-error');
  const closest = articles.find((a) => a.id === gap.article_id);
  const low = typeof gap.confidence === 'number' && gap.confidence < 0.7;
  const card = h('section', { class: 'card gap', dataset: { question: gap.question } },
    h('h4', {}, h('span', { class: 'gap-question' }, gap.question),
      h('span', { class: 'pill warn gap-count', title: gap.session_ids.join(' ') }, `${gap.count} 次会话`)),
    h('div', { class: 'gap-closest' },
      h('span', { class: 'muted' }, '机器人最接近的文章 Closest article：'),
      gap.article_id
        ? [h('code', { class: 'article-id' }, gap.article_id), closest ? h('span', { class: 'article-question' }, closest.question) : null,
          h('span', { class: `confidence${low ? ' low' : ''}` }, `置信度 ${pct(gap.confidence)}`)]
        : h('span', { class: 'muted' }, '无（知识库为空）')),
    h('ul', { class: 'wordings' }, ...wordings.map((w) => wordingRow(w, picker.select, status))),
    h('div', { class: 'gap-actions' },
      h('label', { class: 'target' }, h('span', {}, '加到文章 Add to'), picker.el),
      h('button', { type: 'button', class: 'new-article', onclick: () => startArticle(wordings, card, reload) }, '从这组新建文章 New article')),
    status);
  return card;
}

function wordingRow(w, target, status) {
  const row = h('li', { class: 'wording', dataset: { wording: w.question } },
    h('span', { class: 'wording-text' }, w.question), h('span', { class: 'wording-count muted' }, `× ${w.count}`));
  const add = h('button', { type: 'button', class: 'small primary add-wording' }, '加为相似问法');
  add.addEventListener('click', async () => {
    status.textContent = '';
    if (!target.value) { status.textContent = '请先在下方选择一篇文章 (pick an article first)'; target.focus(); return; }
    add.disabled = true;
    try {
      const article = await addSimilar(target.value, w.question);
      row.classList.add('added');
      add.replaceWith(h('span', { class: 'ok added-to' }, `✓ 已加入 ${article.id}`));
    } catch (e) {
      add.disabled = false;
      fail(status, e);
    }
  });
  row.append(add);
  return row;
}

/** The knowledge-base page's editor, prefilled: the group's most frequent wording as the question, the rest as
 *  similar questions; the admin writes the answer. */
function startArticle(wordings, card, reload) {
  articleDialog(null, async () => {
    card.classList.add('added');
    await reload();
  }, { question: wordings[0].question, similar: wordings.slice(1).map((w) => w.question) });
}
