// The document panel beside the video grid: the room's documents (create,
// rename, delete), who is in which, a textarea editor kept in step with a
// DocSession, other people's cursors and selections drawn over it, undo and
// redo, named versions. Text from other people only ever goes in through
// textContent or a textarea's value.
//
// The textarea holds UTF-16; the session counts code points. Every edit is
// read as a diff of the old and new value on `input` (one op), and every
// remote op is applied to the value with the caret moved through it. A
// document of more than a few hundred kilobytes is shown a window at a time
// (textwindow.js), so that its layout never stalls the page.

import * as ot from './ot.js';
import { colorFor, SYNCHRONIZED } from './docclient.js';
import { CommentsPanel } from './comments-ui.js';
import { TextWindow } from './textwindow.js';
import { saveState } from './docoutage.js';

const $ = (id) => document.getElementById(id);

/** Words for the codes of docError. */
function explain(err) {
  const m = err.message || err.code;
  switch (err.code) {
    case 'read_only': return `This document is read-only for you; the change was not saved (${m}).`;
    case 'forbidden': return `Not allowed: ${m}`;
    case 'unknown_doc': return `That document no longer exists (${m}).`;
    case 'conflict': return `Could not do that: ${m}`;
    case 'too_large': return `Too large: ${m}`;
    case 'revision_too_old': return `Reloaded the document: ${m}`;
    case 'disconnected': return `Not connected to the documents: ${m}`;
    case 'unavailable': return `The server could not do that now; try again in a moment (${m}).`;
    default: return `Document error${err.code ? ` (${err.code})` : ''}: ${m}`;
  }
}

export class DocsPanel {
  /**
   * @param {import('./docclient.js').DocSession} session
   * @param {(id: string) => string} nameOf participant id -> display name
   */
  constructor(session, nameOf) {
    this.s = session;
    this.nameOf = nameOf;
    this.cur = null; // the document in the editor
    this.view = null; // the text shown: a TextWindow on the textarea (bind)
    this.errorTimer = 0;
    this.el = {
      panel: $('docs-panel'), toggle: $('docs-toggle'), body: $('docs-body'),
      create: $('doc-create'), newTitle: $('doc-new-title'), list: $('doc-list'),
      error: $('doc-error'), editor: $('doc-editor'), title: $('doc-title'),
      status: $('doc-status'), people: $('doc-people'), readonly: $('doc-readonly'),
      undo: $('doc-undo'), redo: $('doc-redo'), historyToggle: $('doc-history-toggle'),
      close: $('doc-close'), text: $('doc-text'), overlay: $('doc-overlay'),
      history: $('doc-history'), versionForm: $('doc-version-form'),
      versionName: $('doc-version-name'), versions: $('doc-versions'),
    };
    this.bind();
    this.comments = new CommentsPanel(session, this);
    session.on('docs', () => {
      this.openPending();
      this.renderList();
      // A lock (docLock) arrives as readOnly in the list.
      if (this.cur) this.renderEditor();
    });
    session.on('presence', (id) => { this.renderList(); if (id === this.cur) this.renderPeople(); });
    session.on('status', () => this.renderStatus());
    session.on('error', (err) => this.showError(explain(err)));
    session.on('cursors', (id) => { if (id === this.cur) { this.renderOverlay(); this.renderPeople(); } });
    session.on('threads', (id) => { if (id === this.cur) this.renderOverlay(); });
    session.on('doc', (id, ev) => { if (id === this.cur) this.onDoc(ev); });
    new ResizeObserver(() => this.renderOverlay()).observe(this.el.text);
    this.renderList();
    this.renderEditor();
  }

  bind() {
    const e = this.el;
    e.toggle.addEventListener('click', () => {
      const collapsed = !e.panel.classList.toggle('collapsed');
      e.toggle.setAttribute('aria-expanded', String(collapsed));
      e.toggle.textContent = collapsed ? 'Hide' : 'Documents';
    });
    e.create.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const title = e.newTitle.value.trim() || 'Untitled';
      this.s.create(title).then((id) => {
        e.newTitle.value = '';
        if (id) this.open(id);
      }, (err) => this.showError(explain(err)));
    });
    this.view = new TextWindow(e.text);
    e.text.addEventListener('input', () => this.onInput());
    // Ctrl/Cmd+Z and Ctrl/Cmd+Shift+Z (or Ctrl+Y) are the server's per-author
    // undo and redo: the textarea's own history knows nothing of remote ops.
    e.text.addEventListener('keydown', (ev) => {
      if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || !this.cur || e.text.readOnly) return;
      const k = ev.key.toLowerCase();
      if (k !== 'z' && k !== 'y') return;
      ev.preventDefault();
      const redo = k === 'y' || ev.shiftKey;
      (redo ? this.s.redo(this.cur) : this.s.undo(this.cur)).catch(() => {});
    });
    e.text.addEventListener('compositionstart', () => { this.composing = true; });
    e.text.addEventListener('compositionend', () => {
      this.composing = false;
      this.scheduleFlush();
    });
    for (const type of ['select', 'keyup', 'mouseup', 'focus']) e.text.addEventListener(type, () => this.sendSelection());
    document.addEventListener('selectionchange', () => { if (document.activeElement === e.text) this.sendSelection(); });
    e.text.addEventListener('scroll', () => {
      if (!this.viewLag && !this.composing && this.view.followScroll()) this.renderOverlay();
      this.syncOverlayScroll();
    });
    e.undo.addEventListener('click', () => this.cur && this.s.undo(this.cur).catch(() => {}));
    e.redo.addEventListener('click', () => this.cur && this.s.redo(this.cur).catch(() => {}));
    e.close.addEventListener('click', () => this.closeEditor());
    e.historyToggle.addEventListener('click', () => {
      e.history.hidden = !e.history.hidden;
      if (!e.history.hidden) this.loadHistory();
    });
    e.versionForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = e.versionName.value.trim();
      if (!name || !this.cur) return;
      this.s.nameVersion(this.cur, name).then(() => {
        e.versionName.value = '';
        this.loadHistory();
      }, () => {});
    });
  }

  /** Shows or hides what only people with the editDocs grant may do. */
  setCanEdit(canEdit, isAdmin = false) {
    this.canEdit = canEdit;
    this.isAdmin = isAdmin;
    this.s.canEdit = canEdit;
    this.el.create.hidden = !canEdit;
    this.el.panel.classList.toggle('can-edit', canEdit);
    this.renderList();
  }

  showError(text) {
    const e = this.el.error;
    e.textContent = text;
    e.hidden = !text;
    clearTimeout(this.errorTimer);
    if (text) this.errorTimer = setTimeout(() => { e.hidden = true; }, 20000);
  }

  // ---- list ----

  editorsOf(id) {
    const ids = this.s.presence.get(id) || (this.s.info(id) || {}).editors || [];
    return ids;
  }

  renderList() {
    // Re-rendering would take the rename field away from under the fingers.
    if (this.renaming) { this.listStale = true; return; }
    const list = this.el.list;
    list.replaceChildren();
    for (const info of this.s.docs) {
      const li = document.createElement('li');
      li.dataset.docId = info.id;
      li.classList.toggle('current', info.id === this.cur);
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'doc-open';
      open.textContent = info.title || 'Untitled';
      if (info.readOnly) open.textContent += ' 🔒';
      open.addEventListener('click', () => this.open(info.id));
      const who = document.createElement('span');
      who.className = 'doc-editors';
      who.textContent = this.editorsOf(info.id).map((p) => this.nameOf(p) || 'Guest').join(', ');
      const rename = document.createElement('button');
      rename.type = 'button';
      rename.className = 'doc-rename small';
      rename.title = 'Rename';
      rename.textContent = 'Rename';
      rename.addEventListener('click', () => this.startRename(li, info));
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'doc-delete small danger';
      del.textContent = 'Delete';
      // Two clicks: no modal dialogs on a call. The armed state lives
      // here, not in the button, because the list re-renders on every
      // change anyone makes.
      const armed = this.armedDelete === info.id;
      del.classList.toggle('armed', armed);
      del.textContent = armed ? 'Really delete?' : 'Delete';
      del.addEventListener('click', () => {
        clearTimeout(this.armTimer);
        if (this.armedDelete !== info.id) {
          this.armedDelete = info.id;
          this.armTimer = setTimeout(() => { this.armedDelete = null; this.renderList(); }, 4000);
        } else {
          this.armedDelete = null;
          this.s.remove(info.id).catch(() => {});
        }
        this.renderList();
      });
      li.append(open);
      if (this.canEdit !== false) li.append(rename, del);
      if (this.isAdmin) {
        const lock = document.createElement('button');
        lock.type = 'button';
        lock.className = 'doc-lock small secondary';
        lock.textContent = info.readOnly ? 'Unlock' : 'Lock';
        lock.title = info.readOnly ? 'Let people edit again' : 'Make read-only for everyone';
        lock.addEventListener('click', () => this.s.lock(info.id, !info.readOnly).catch(() => {}));
        li.append(lock);
      }
      li.append(who);
      list.append(li);
    }
    if (!this.s.docs.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = this.s.connected ? 'No documents yet.' : 'Connecting…';
      list.append(li);
    }
    if (this.cur) {
      const info = this.s.info(this.cur);
      if (info) this.el.title.textContent = info.title || 'Untitled';
    }
  }

  startRename(li, info) {
    const input = document.createElement('input');
    input.className = 'doc-rename-input';
    input.value = info.title;
    input.maxLength = 200;
    const btn = li.querySelector('.doc-open');
    btn.replaceWith(input);
    this.renaming = info.id;
    input.focus();
    input.select();
    let done = false;
    const finish = (commit) => {
      if (done) return;
      done = true;
      this.renaming = null;
      this.listStale = false;
      const title = input.value.trim();
      if (commit && title && title !== info.title) this.s.rename(info.id, title).catch(() => {});
      this.renderList();
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') finish(true);
      else if (ev.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
  }

  // ---- editor ----

  /** Shows document id in the editor; resolves once its text is here. */
  async open(id) {
    if (this.cur && this.cur !== id) this.s.closeDoc(this.cur);
    this.cur = id;
    this.el.history.hidden = true;
    this.renderList();
    this.renderEditor();
    try {
      await this.s.openDoc(id);
    } catch (err) {
      if (this.cur === id) this.closeEditor();
      throw err;
    }
    if (this.cur === id) {
      this.showError('');
      this.renderEditor();
    }
  }

  /**
   * After a reload, opens a document this browser still has unsent edits
   * in (docstore.js), so that they go out without waiting for a click.
   */
  openPending() {
    if (this.pendingChecked || !this.s.storeKey || !this.s.docs.length) return;
    this.pendingChecked = true;
    this.s.pendingDocs().then((ids) => {
      const id = ids.find((x) => this.s.info(x));
      if (id && !this.cur) this.open(id).catch(() => {});
    });
  }

  closeEditor() {
    if (this.cur) this.s.closeDoc(this.cur);
    this.cur = null;
    this.renderList();
    this.renderEditor();
  }

  renderEditor() {
    const e = this.el;
    const d = this.cur && this.s.doc(this.cur);
    e.editor.hidden = !this.cur;
    if (!this.cur) return;
    const info = this.s.info(this.cur);
    e.title.textContent = (info && info.title) || 'Untitled';
    const ready = !!(d && d.client);
    const locked = !!(info && info.readOnly);
    const readOnly = !ready || d.readOnly;
    e.text.readOnly = readOnly;
    e.readonly.hidden = !(ready && d.readOnly);
    e.readonly.textContent = !locked
      ? 'Read-only: you can follow the edits, but not change this document.'
      : 'Locked: this document is read-only for everyone until a room admin unlocks it.';
    e.undo.disabled = e.redo.disabled = readOnly;
    e.versionForm.querySelector('button').disabled = readOnly;
    this.setText(ready ? d.client.text : '', null);
    this.renderPeople();
    this.renderStatus();
    this.comments.render();
  }

  renderStatus() {
    const d = this.cur && this.s.doc(this.cur);
    let text = '';
    const save = saveState(d); // the server could not store edits (docoutage.js)
    if (!this.s.connected) text = 'Offline';
    else if (save === 'failed') text = 'Saving failed: the server could not store edits. They are kept in this browser; open the document again or reload to retry.';
    else if (save === 'paused') text = 'Saving paused: the server could not store edits; retrying…';
    else if (!d || !d.opened) text = 'Opening…';
    else text = d.client.state === SYNCHRONIZED ? 'Saved' : 'Saving…';
    this.el.status.textContent = text;
    this.el.status.dataset.state = save || (d && d.client ? d.client.state : '');
  }

  renderPeople() {
    const ul = this.el.people;
    ul.replaceChildren();
    if (!this.cur) return;
    const d = this.s.doc(this.cur);
    for (const p of this.editorsOf(this.cur)) {
      const li = document.createElement('li');
      const c = d && d.remoteCursors.get(p);
      li.style.setProperty('--c', c ? c.color : colorFor(p));
      li.dataset.participant = p;
      li.textContent = this.nameOf(p) || (c && c.name) || 'Guest';
      ul.append(li);
    }
  }

  onDoc(ev) {
    const d = this.s.doc(this.cur);
    if (ev.kind === 'deleted' || ev.kind === 'closed') {
      this.cur = null;
      this.renderEditor();
      this.renderList();
      if (ev.kind === 'deleted') this.showError('The document was deleted.');
      return;
    }
    if (!d || !d.client) return;
    if (ev.kind === 'remote') {
      // The textarea catches up once per frame, and not at all while an
      // input method is composing (setting the value would cancel it):
      // meanwhile viewLag is the change from what it shows to the model.
      this.viewLag = this.viewLag ? ot.compose(this.viewLag, ev.view) : ev.view;
      this.scheduleFlush();
    } else if (ev.kind === 'opened' || ev.kind === 'reset') {
      this.renderEditor();
    }
    this.renderStatus();
  }

  /**
   * Puts text in the textarea. With op (the change from the shown text),
   * the caret and selection move through it; without, they are clamped.
   */
  scheduleFlush() {
    if (this.flushPending || this.composing) return;
    this.flushPending = true;
    requestAnimationFrame(() => {
      this.flushPending = false;
      this.flushView();
    });
  }

  /** Brings the textarea up to the model, moving the caret through the lag. */
  flushView() {
    const d = this.cur && this.s.doc(this.cur);
    if (!this.viewLag || this.composing) return;
    if (!d || !d.client) {
      this.viewLag = null;
      return;
    }
    if (!this.view.inSync()) this.onInput(); // an input not yet seen
    this.setText(d.client.text, this.viewLag);
    this.sendSelection();
  }

  setText(text, op) {
    const v = this.view;
    this.viewLag = null;
    if (v.inSync() && v.full === text) return;
    let sel = null;
    if (op && v.inSync()) sel = ot.transformSelection(v.selection(), op, false);
    // Only the span that changed is replaced, so the scroll position holds.
    v.show(text, op);
    if (sel) v.setSelection(sel);
    this.renderOverlay();
  }

  onInput() {
    const ta = this.el.text;
    const d = this.cur && this.s.doc(this.cur);
    if (!d || !d.client) {
      ta.value = this.view.win;
      return;
    }
    const now = this.view.fullValue();
    let op = ot.diff(this.view.full, now);
    this.view.commitInput(now);
    if (this.viewLag) {
      // The edit was made on a view that lags the model: rebase it (and the
      // lag over it), so that shown + lag' == model + op'.
      const lag = this.viewLag;
      this.viewLag = ot.transform(lag, op, ot.RIGHT);
      op = ot.transform(op, lag, ot.LEFT);
    }
    try {
      this.s.edit(this.cur, op);
    } catch (err) {
      console.warn('huddle: local edit did not fit; showing the document again', err);
      this.setText(d.client.text, null);
      return;
    }
    this.renderOverlay();
    this.sendSelection();
  }

  sendSelection() {
    if (!this.cur) return;
    if (!this.view.inSync()) return; // an input event is on its way
    if (this.viewLag) return; // sent when the view catches up
    const sel = this.view.selection();
    this.s.setSelection(this.cur, sel.anchor, sel.head);
  }

  // ---- remote cursors ----

  syncOverlayScroll() {
    this.el.overlay.scrollTop = this.el.text.scrollTop;
    this.el.overlay.scrollLeft = this.el.text.scrollLeft;
  }

  /**
   * Draws remote carets and selections in a mirror of the textarea: the
   * same box, font and wrapping, with transparent text, so that a span
   * around a range lands exactly over those characters.
   */
  renderOverlay() {
    // Coalesced to one render per frame; a large document's mirror costs a
    // layout of all the text before the last cursor, so it is also spaced out.
    if (this.overlayPending) return;
    this.overlayPending = true;
    const big = this.view.win.length > 100000;
    const wait = big ? Math.max(0, (this.overlayAt || 0) + 500 - performance.now()) : 0;
    setTimeout(() => requestAnimationFrame(() => {
      this.overlayPending = false;
      this.overlayAt = performance.now();
      this.drawOverlay();
    }), wait);
  }

  drawOverlay() {
    if (this.viewLag) { this.renderOverlay(); return; } // cursors are in model positions
    const ta = this.el.text;
    const ov = this.el.overlay;
    const d = this.cur && this.s.doc(this.cur);
    const cursors = d && d.client ? [...d.remoteCursors.values()] : [];
    // Open comment threads are highlighted under the cursors' selections.
    const threads = d && d.client ? [...d.threads.values()].filter((t) => t.placed && !t.wire.resolved && t.end > t.start) : [];
    ov.replaceChildren();
    if (!cursors.length && !threads.length) return;
    ov.style.left = `${ta.offsetLeft + ta.clientLeft}px`;
    ov.style.top = `${ta.offsetTop + ta.clientTop}px`;
    ov.style.width = `${ta.clientWidth}px`;
    ov.style.height = `${ta.clientHeight}px`;
    // The mirror holds the window; marks outside it are clamped to its
    // edges, and carets outside it are not drawn.
    const v = this.view;
    const text = v.win;
    const marks = cursors.map((c) => {
      const a = v.unitOf(c.anchor);
      const h = v.unitOf(c.head);
      return { c, start: Math.min(a, h), end: Math.max(a, h), head: v.contains(c.head) ? h : -1 };
    });
    for (const t of threads) {
      marks.push({ thread: t.wire.id, start: v.unitOf(t.start), end: v.unitOf(t.end), head: -1 });
    }
    const points = new Set([0]);
    for (const m of marks) { points.add(m.start); points.add(m.end); if (m.head >= 0) points.add(m.head); }
    const sorted = [...points].sort((x, y) => x - y);
    const frag = document.createDocumentFragment();
    for (let i = 0; i < sorted.length; i++) {
      const at = sorted[i];
      for (const m of marks) {
        if (m.head !== at) continue;
        const caret = document.createElement('span');
        caret.className = 'rc-caret';
        caret.dataset.participant = m.c.participant;
        caret.style.setProperty('--c', m.c.color);
        const flag = document.createElement('span');
        flag.className = 'rc-flag';
        flag.textContent = m.c.name;
        caret.append(flag);
        frag.append(caret);
      }
      const next = i + 1 < sorted.length ? sorted[i + 1] : text.length;
      if (next <= at) continue;
      const piece = text.slice(at, next);
      const covers = (m) => m.start <= at && m.end >= next && m.start < m.end;
      const cover = marks.find((m) => m.c && covers(m));
      const thread = !cover && marks.find((m) => m.thread && covers(m));
      if (thread) {
        const span = document.createElement('span');
        span.className = 'cm-hl';
        span.dataset.thread = thread.thread;
        span.style.background = 'rgba(255, 196, 0, 0.35)';
        span.style.borderBottom = '2px solid rgba(230, 160, 0, 0.9)';
        span.textContent = piece;
        frag.append(span);
      } else if (cover) {
        const span = document.createElement('span');
        span.className = 'rc-sel';
        span.dataset.participant = cover.c.participant;
        span.style.setProperty('--c', cover.c.color);
        span.textContent = piece;
        frag.append(span);
      } else {
        frag.append(piece);
      }
    }
    frag.append('\u200b'); // keeps a trailing empty line's height
    ov.append(frag);
    this.syncOverlayScroll();
  }

  // ---- history ----

  loadHistory() {
    const id = this.cur;
    if (!id) return;
    this.s.history(id).then((h) => {
      if (this.cur !== id) return;
      const ul = this.el.versions;
      ul.replaceChildren();
      const row = (label, what) => {
        const li = document.createElement('li');
        const span = document.createElement('span');
        span.textContent = label;
        const btn = document.createElement('button');
        btn.type = 'button';
        btn.className = 'small doc-restore';
        btn.textContent = 'Restore';
        btn.disabled = this.el.text.readOnly;
        btn.addEventListener('click', () => this.s.restore(id, what).catch(() => {}));
        li.append(span, btn);
        ul.append(li);
      };
      for (const v of h.versions || []) row(`${v.name} · rev ${v.rev}${v.author ? ` · ${v.author}` : ''}`, { name: v.name });
      for (const v of h.snapshots || []) row(`Snapshot · rev ${v.rev} · ${new Date(v.created).toLocaleString()}`, { rev: v.rev });
      if (!ul.children.length) {
        const li = document.createElement('li');
        li.className = 'empty';
        li.textContent = 'No versions yet.';
        ul.append(li);
      }
    }, () => {});
  }
}
