// "机器人本应这样回答 …" / "The bot should have answered this with …": in a chat the bot handed off for low
// confidence or after the visitor's 👎, the agent (an admin: only they may change the knowledge base) links the
// visitor's handed-off question to an article; the wording is added to its similar questions (protocol §11) and
// the bot answers it from the next question on.

import { h, toast } from '../core/dom.js';
import { S, isAdmin } from '../core/state.js';
import { api } from '../core/api.js';
import { addSimilar, articlePicker, loadArticles } from '../admin/articles.js';
import { field, formDialog } from '../admin/forms.js';

// The handoffs where the bot had a question it should have answered: not a visitor asking for a person.
const TEACHABLE = new Set(['low_confidence', 'negative_feedback']);

/** The visitor's question the bot handed off: for low confidence the last text before the bot's handoff notice
 *  (its last message: it stays quiet after), for a 👎 the last text before the last answer it gave. */
export function handedOffQuestion(c) {
  const reason = (c.profile && c.profile.handoff_reason) || (c.rec && c.rec.handoff_reason);
  if (!TEACHABLE.has(reason)) return null;
  const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
  const bot = msgs.filter((m) => m.sender === 'bot' && (reason !== 'negative_feedback' || typeof m.confidence === 'number')).pop();
  const agent = msgs.find((m) => m.sender === 'agent');
  const end = bot ? bot.seq : agent ? agent.seq : Infinity;
  return msgs.filter((m) => m.sender === 'user' && (!m.msg_type || m.msg_type === 'text') && m.seq < end && (m.content || '').trim()).pop() || null;
}

/** The action under message `m` when it is the chat's handed-off question and the agent may teach the bot; or null. */
export function teachAction(c, m) {
  if (!isAdmin() || m.sender !== 'user') return null;
  const q = handedOffQuestion(c);
  if (!q || q.seq !== m.seq) return null;
  const taught = S.taught.get(`${c.sid}:${m.seq}`);
  if (taught) return h('div', { class: 'teach' }, h('span', { class: 'ok taught' }, `✓ 已教给机器人 → ${taught}`));
  const btn = h('button', { type: 'button', class: 'ghost small teach-bot', title: 'The bot should have answered this with …' }, '机器人本应这样回答 …');
  const box = h('div', { class: 'teach' }, btn);
  btn.addEventListener('click', () => openTeachDialog(c, m, box, btn));
  return box;
}

async function openTeachDialog(c, m, box, btn) {
  const question = m.content.trim();
  btn.disabled = true;
  let articles;
  let suggested = null;
  try {
    // The bot's closest article now is the likely one after a low-confidence handoff; after a 👎 it is the wrong one.
    const [all, asked] = await Promise.all([loadArticles(), api('bot/ask', { method: 'POST', body: { question } }).catch(() => null)]);
    articles = all;
    const reason = (c.profile && c.profile.handoff_reason) || (c.rec && c.rec.handoff_reason);
    if (asked && reason === 'low_confidence') suggested = asked.article_id;
  } catch (e) {
    toast('无法加载知识库文章：' + e.message, 'error');
    return;
  } finally {
    btn.disabled = false;
  }
  if (!articles.length) { toast('知识库是空的：先在「知识库」页面新建文章', 'error'); return; }
  const picker = articlePicker(articles, suggested, 'article');
  formDialog('teach-dialog', '机器人本应这样回答 … The bot should have answered this with …', [
    h('blockquote', { class: 'teach-question' }, question),
    field('文章 Article', picker.el, '访客的这句话会加为该文章的相似问法，机器人下一个问题起就会回答'),
  ], '添加 Add', async () => {
    if (!picker.select.value) throw new Error('请选择一篇文章 (pick an article)');
    const article = await addSimilar(picker.select.value, question);
    S.taught.set(`${c.sid}:${m.seq}`, article.id);
    box.replaceChildren(h('span', { class: 'ok taught' }, `✓ 已教给机器人 → ${article.id}`));
    toast(`已加为「${article.question}」的相似问法`, 'accent');
  });
}
