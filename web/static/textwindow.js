// A window of a large document in a textarea. Browsers lay out a
// textarea's whole text whenever any of it changes: at several megabytes
// that is hundreds of milliseconds a keystroke or remote edit, and the page
// stops answering. So a document longer than WINDOW_UNITS shows a window of
// about WINDOW_UNITS around where the person is reading, cut at line
// breaks; scrolling near either edge moves the window. Smaller documents
// are shown whole, as before.
//
// The full text stays a JavaScript string (cheap to diff and slice); only
// the textarea holds the window. Positions given to and returned from here
// are code points of the full text.

import * as ot from './ot.js';

/** UTF-16 units shown at once (a window is at most twice this). */
export const WINDOW_UNITS = 256 * 1024;

export class TextWindow {
  /** @param {HTMLTextAreaElement} ta */
  constructor(ta) {
    this.ta = ta;
    this.full = ''; // the full text as shown (the model minus any lag)
    this.win = ''; // what the textarea holds when in step: full[start, end)
    this.start = 0; // unit offsets of the window in full
    this.end = 0;
    this.startCp = 0; // code point offset of start
    this.winCps = 0; // code points in win
  }

  /** Whether the textarea holds exactly the window (no input pending). */
  inSync() {
    return this.ta.value === this.win;
  }

  /** Whether part of the text is outside the window. */
  windowed() {
    return this.start > 0 || this.end < this.full.length;
  }

  /**
   * Shows text, which op (or null: no relation) turned the previous text
   * into. The window follows its text through op; only the span that
   * changed is replaced in the textarea.
   */
  show(text, op) {
    if (text.length <= WINDOW_UNITS) {
      this.setWindow(text, 0, text.length, 0);
    } else if (op && this.full.length > 0) {
      const startCp = ot.transformPosition(this.startCp, op, false);
      const endCp = ot.transformPosition(this.startCp + this.winCps, op, true);
      const s = ot.unitOffset(text, startCp);
      const e = ot.unitOffset(text, endCp - startCp, s);
      if (e - s > 2 * WINDOW_UNITS || e - s < WINDOW_UNITS / 4) this.place(text, s + ((e - s) >> 1));
      else this.setWindow(text, s, e, startCp);
    } else {
      this.place(text, ot.unitOffset(text, this.startCp));
    }
    replaceChanged(this.ta, this.win);
  }

  /** The full text with the textarea's current value in the window. */
  fullValue() {
    return this.full.slice(0, this.start) + this.ta.value + this.full.slice(this.end);
  }

  /** Takes the textarea's value (read by fullValue) as shown. */
  commitInput(full) {
    this.full = full;
    this.win = this.ta.value;
    this.end = this.start + this.win.length;
    this.winCps = ot.cpLen(this.win);
  }

  /** The textarea's selection in code points of the full text. */
  selection() {
    const s = ot.selectionOf(this.ta);
    return { anchor: s.anchor + this.startCp, head: s.head + this.startCp };
  }

  /** The selection's ends in code points of the full text, in order. */
  selectedRange() {
    const s = this.selection();
    return { start: Math.min(s.anchor, s.head), end: Math.max(s.anchor, s.head) };
  }

  /** Sets the textarea's selection from full-text code points (clamped to the window). */
  setSelection(sel) {
    const a = this.unitOf(sel.anchor);
    const h = this.unitOf(sel.head);
    this.ta.setSelectionRange(Math.min(a, h), Math.max(a, h), h < a ? 'backward' : 'forward');
  }

  /** Whether code point cp of the full text is in the window. */
  contains(cp) {
    return cp >= this.startCp && cp <= this.startCp + this.winCps;
  }

  /** The window's unit offset of full-text code point cp, clamped to the window. */
  unitOf(cp) {
    if (cp <= this.startCp) return 0;
    return ot.unitOffset(this.win, cp - this.startCp);
  }

  /**
   * Moves the window when the textarea is scrolled near an edge that has
   * more text beyond it, keeping the same text in view. A caret left
   * outside the new window is put where the person is looking, as a click
   * there would. Reports whether the window moved.
   */
  followScroll() {
    const ta = this.ta;
    if (!this.windowed() || !this.inSync()) return false;
    const h = ta.clientHeight;
    const height = ta.scrollHeight;
    const nearTop = this.start > 0 && ta.scrollTop < h;
    const nearBottom = this.end < this.full.length && ta.scrollTop + 2 * h > height;
    if (!nearTop && !nearBottom) return false;
    const focused = document.activeElement === ta;
    const sel = focused ? this.selection() : null;
    const frac = (ta.scrollTop + h / 2) / Math.max(1, height);
    const center = this.start + Math.round(frac * (this.end - this.start));
    this.place(this.full, center);
    ta.value = this.win;
    ta.scrollTop = ((center - this.start) / Math.max(1, this.end - this.start)) * ta.scrollHeight - h / 2;
    if (sel && this.contains(sel.anchor) && this.contains(sel.head)) this.setSelection(sel);
    else if (focused) ta.setSelectionRange(center - this.start, center - this.start);
    return true;
  }

  /** Centres a window of text on unit offset center, cut at line breaks. */
  place(text, center) {
    if (text.length <= WINDOW_UNITS) {
      this.setWindow(text, 0, text.length, 0);
      return;
    }
    let s = Math.max(0, Math.min(center - (WINDOW_UNITS >> 1), text.length - WINDOW_UNITS));
    let e = s + WINDOW_UNITS;
    // Whole lines where there are any close by; never half a surrogate pair.
    const lineStart = text.lastIndexOf('\n', s - 1) + 1;
    if (s - lineStart < 4096) s = lineStart;
    const lineEnd = text.indexOf('\n', e);
    if (lineEnd >= 0 && lineEnd - e < 4096) e = lineEnd + 1;
    if (lineEnd < 0 && text.length - e < 4096) e = text.length;
    if (s > 0 && isLow(text.charCodeAt(s))) s--;
    if (e < text.length && isLow(text.charCodeAt(e))) e++;
    this.setWindow(text, s, e, ot.cpLen(text.slice(0, s)));
  }

  setWindow(text, start, end, startCp) {
    this.full = text;
    this.start = start;
    this.end = end;
    this.startCp = startCp;
    this.win = start === 0 && end === text.length ? text : text.slice(start, end);
    this.winCps = ot.cpLen(this.win);
  }
}

function isLow(c) {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * Sets a textarea's value by replacing only the span that differs, which
 * keeps the caret and scroll position where the change is not.
 */
function replaceChanged(ta, text) {
  const old = ta.value;
  if (old === text) return;
  const n = Math.min(old.length, text.length);
  let p = 0;
  while (p < n && old.charCodeAt(p) === text.charCodeAt(p)) p++;
  let q = 0;
  while (q < n - p && old.charCodeAt(old.length - 1 - q) === text.charCodeAt(text.length - 1 - q)) q++;
  // Never split a surrogate pair at either end of the replaced span.
  if (p > 0 && isLow(text.charCodeAt(p))) p--;
  if (q > 0 && isLow(text.charCodeAt(text.length - q))) q--;
  ta.setRangeText(text.slice(p, text.length - q), p, old.length - q, 'preserve');
}
