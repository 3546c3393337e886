// The comment threads beside the document editor: a form that opens a
// thread on the editor's selection, and the document's threads with the
// text they are anchored to, their comments, a reply box and a resolve
// (or reopen) button. The ranges are highlighted in the editor by the
// docs panel's overlay. Text from other people only goes in through
// textContent.

import * as ot from './ot.js';
import { threadsOf, createThread, replyThread, resolveThread } from './doccomments.js';

const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  Object.assign(e, props);
  e.append(...kids);
  return e;
};

export class CommentsPanel {
  /**
   * @param {import('./docclient.js').DocSession} session
   * @param {{cur: string|null, el: {editor: HTMLElement, text: HTMLTextAreaElement}, showError: (m: string) => void}} docs
   */
  constructor(session, docs) {
    this.s = session;
    this.docs = docs;
    this.input = el('input', { id: 'doc-comment-text', type: 'text', maxLength: 4000, placeholder: 'Comment on the selected text' });
    this.input.setAttribute('aria-label', 'Comment on the selected text');
    this.add = el('button', { id: 'doc-comment-add', type: 'submit', className: 'small', textContent: 'Comment' });
    this.form = el('form', { id: 'doc-comment-form', className: 'doc-create', autocomplete: 'off' }, this.input, this.add);
    this.list = el('ul', { id: 'doc-threads', className: 'doc-threads' });
    this.list.setAttribute('aria-label', 'Comment threads');
    this.list.style.listStyle = 'none';
    this.list.style.padding = '0';
    this.box = el('section', { id: 'doc-comments', className: 'doc-comments' }, this.form, this.list);
    docs.el.editor.append(this.box);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.create();
    });
    session.on('threads', (id) => { if (id === docs.cur) this.render(); });
    session.on('doc', (id) => { if (id === docs.cur) this.renderSoon(); });
  }

  /** Opens a thread on the editor's selection with the form's text. */
  create() {
    const id = this.docs.cur;
    const text = this.input.value.trim();
    if (!id || !text) return;
    const { start, end } = this.docs.view.selectedRange();
    if (start === end) {
      this.docs.showError('Select the text to comment on first.');
      return;
    }
    createThread(this.s, id, start, end, text).then(() => { this.input.value = ''; }, () => {});
  }

  renderSoon() {
    if (this.renderTimer) return;
    this.renderTimer = setTimeout(() => {
      this.renderTimer = 0;
      this.render();
    }, 250);
  }

  render() {
    const id = this.docs.cur;
    const d = id && this.s.doc(id);
    this.list.replaceChildren();
    if (!d || !d.client) return;
    const text = d.client.text;
    for (const t of threadsOf(this.s, id)) {
      const li = el('li', { className: 'doc-thread' });
      li.dataset.thread = t.id;
      li.dataset.resolved = String(t.resolved);
      li.style.borderLeft = `3px solid ${t.resolved ? '#999' : '#e6a000'}`;
      li.style.padding = '0.25em 0.5em';
      li.style.margin = '0.5em 0';
      if (t.resolved) li.style.opacity = '0.6';
      const quoted = t.placed ? text.slice(ot.unitOffset(text, t.start), ot.unitOffset(text, t.end)) : '…';
      li.append(el('blockquote', { className: 'doc-thread-quote', textContent: quoted || '(text deleted)' }));
      for (const c of t.comments) {
        li.append(el('p', { className: 'doc-thread-comment' },
          el('strong', { textContent: `${c.name || c.author}: ` }), el('span', { textContent: c.text })));
      }
      const reply = el('input', { className: 'doc-thread-reply-text', type: 'text', maxLength: 4000, placeholder: 'Reply' });
      reply.setAttribute('aria-label', 'Reply');
      const send = el('button', { className: 'small doc-thread-reply', type: 'submit', textContent: 'Reply' });
      const form = el('form', { className: 'doc-thread-reply-form', autocomplete: 'off' }, reply, send);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (reply.value.trim()) replyThread(this.s, id, t.id, reply.value.trim()).catch(() => {});
      });
      const resolve = el('button', { className: 'small secondary doc-thread-resolve', type: 'button', textContent: t.resolved ? 'Reopen' : 'Resolve' });
      resolve.addEventListener('click', () => resolveThread(this.s, id, t.id, !t.resolved).catch(() => {}));
      li.append(form, resolve);
      this.list.append(li);
    }
  }
}
