// Teaching the bot a visitor's wording (protocol §11), shared by the 知识库缺口 page and the chat view's "the bot
// should have answered this with …": the app's articles for a picker, and POST /kb/articles/{id}/similar.

import { h } from '../core/dom.js';
import { api } from '../core/api.js';

const PAGE = 200; // GET /kb/articles' largest page

/** Every article of the app (id and question), in the API's order: what an admin picks a target from. */
export async function loadArticles() {
  const all = [];
  let cursor = null;
  do {
    const page = await api(`kb/articles?limit=${PAGE}${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
    for (const a of page.items || []) all.push({ id: a.id, question: a.question });
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

/** Add `question` to the article's similar questions; the bot answers it from the next question on. The API's
 *  errors (409 already_exists names the article that has it, 404 article_not_found, …) are thrown as they are. */
export function addSimilar(articleId, question) {
  return api(`kb/articles/${encodeURIComponent(articleId)}/similar`, { method: 'POST', body: { question } });
}

/** A select of the articles, `selected` chosen (or a blank first choice), with a filter box that narrows it. */
export function articlePicker(articles, selected, name = 'article') {
  const select = h('select', { name, class: 'article-pick', required: true });
  const fill = (words) => {
    const want = words.trim().toLowerCase();
    const keep = select.value;
    const shown = articles.filter((a) => !want || a.id.toLowerCase().includes(want) || a.question.toLowerCase().includes(want));
    select.replaceChildren(h('option', { value: '' }, shown.length ? '选择文章 Pick an article…' : '没有匹配的文章 No match'),
      ...shown.map((a) => h('option', { value: a.id }, `${a.question} · ${a.id}`)));
    select.value = shown.some((a) => a.id === keep) ? keep : shown.length === 1 ? shown[0].id : '';
  };
  fill('');
  if (selected && articles.some((a) => a.id === selected)) select.value = selected;
  const filter = h('input', { type: 'search', class: 'article-filter', placeholder: '筛选 Filter', 'aria-label': '筛选文章' });
  filter.addEventListener('input', () => fill(filter.value));
  return { select, filter, el: h('span', { class: 'article-picker' }, filter, select) };
}
