// The control bar under the stage, its keyboard shortcuts, push-to-talk and
// the help overlay that lists the shortcuts. Every button has a visible
// label (hidden on a phone, where the icon stays) and a tooltip naming its
// shortcut.

import { icon as svgIcon } from './icons.js';

/**
 * @typedef {object} Control
 * @property {string} id        button id (ctl-<id>)
 * @property {string} icon    a name from icons.js
 * @property {string} label     visible text
 * @property {string} key       shortcut key, shown in the tooltip and the help
 * @property {string} help      what it does, for the help overlay
 * @property {() => void} run
 */

export class Controls {
  /**
   * @param {HTMLElement} bar the nav element to fill
   * @param {HTMLElement} help the help overlay
   * @param {Control[]} controls
   * @param {{isMicOn: () => boolean, setMic: (on: boolean) => void, inCall: () => boolean}} ptt push-to-talk
   */
  constructor(bar, help, controls, ptt) {
    this.bar = bar;
    this.help = help;
    this.controls = controls;
    this.ptt = ptt;
    this.talking = false; // space held while muted
    this.buttons = new Map();
    for (const c of controls) {
      const b = document.createElement('button');
      b.type = 'button';
      b.id = `ctl-${c.id}`;
      b.className = 'ctl';
      const icon = document.createElement('span');
      icon.className = 'ctl-icon';
      const label = document.createElement('span');
      label.className = 'ctl-label';
      b.append(icon, label);
      b.addEventListener('click', () => c.run());
      this.buttons.set(c.id, b);
      bar.append(b);
      this.set(c.id, { icon: c.icon, label: c.label, pressed: null });
    }
    this.fillHelp();
    help.querySelector('#help-close').addEventListener('click', () => this.showHelp(false));
    help.addEventListener('click', (ev) => { if (ev.target === help) this.showHelp(false); });
    document.addEventListener('keydown', (ev) => this.onKey(ev));
    document.addEventListener('keyup', (ev) => this.onKeyUp(ev));
    window.addEventListener('blur', () => this.endTalk());
  }

  /**
   * Updates a button's icon, label, pressed state (null: not a toggle) and
   * count badge ('' hides it; badgeLabel says it to screen readers).
   */
  set(id, { icon, label, pressed, danger, badge, badgeLabel }) {
    const b = this.buttons.get(id);
    if (!b) return;
    const c = this.controls.find((x) => x.id === id);
    if (icon !== undefined && b.dataset.icon !== icon) {
      b.dataset.icon = icon;
      b.querySelector('.ctl-icon').replaceChildren(svgIcon(icon));
    }
    if (label !== undefined) b.querySelector('.ctl-label').textContent = label;
    if (badge !== undefined) b.dataset.badgeLabel = badge ? badgeLabel || badge : '';
    if (label !== undefined || badge !== undefined) {
      const text = b.querySelector('.ctl-label').textContent;
      const extra = b.dataset.badgeLabel ? `, ${b.dataset.badgeLabel}` : '';
      b.title = `${text} (${keyName(c.key)})${extra}`;
      b.setAttribute('aria-label', text + extra);
    }
    if (pressed !== undefined && pressed !== null) b.setAttribute('aria-pressed', String(pressed));
    if (danger !== undefined) b.classList.toggle('off', !!danger);
    if (badge !== undefined) {
      let s = b.querySelector('.ctl-badge');
      if (!s && badge) {
        s = document.createElement('span');
        s.className = 'ctl-badge';
        s.setAttribute('aria-hidden', 'true'); // the label says it
        b.append(s);
      }
      if (s) {
        s.textContent = badge;
        s.hidden = !badge;
      }
    }
  }

  fillHelp() {
    const dl = this.help.querySelector('#help-keys');
    dl.replaceChildren();
    const rows = [...this.controls.map((c) => [keyName(c.key), c.help]),
      ['Space', 'Hold to talk while your microphone is off'],
      ['Esc', 'Close this help, or leave full screen']];
    for (const [k, what] of rows) {
      const dt = document.createElement('dt');
      const kbd = document.createElement('kbd');
      kbd.textContent = k;
      dt.append(kbd);
      const dd = document.createElement('dd');
      dd.textContent = what;
      dl.append(dt, dd);
    }
  }

  showHelp(show = this.help.hidden) {
    this.help.hidden = !show;
    if (show) this.help.querySelector('#help-close').focus();
  }

  onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    if (ev.key === 'Escape' && !this.help.hidden) {
      this.showHelp(false);
      return;
    }
    if (ev.key === '?') {
      ev.preventDefault();
      this.showHelp();
      return;
    }
    if (!this.ptt.inCall()) return;
    if (ev.code === 'Space') {
      ev.preventDefault(); // no page scroll, no button click
      if (!ev.repeat && !this.ptt.isMicOn()) {
        this.talking = true;
        this.ptt.setMic(true);
        document.body.classList.add('talking');
      }
      return;
    }
    const c = this.controls.find((x) => x.key === ev.key.toLowerCase());
    if (c && !ev.repeat) {
      ev.preventDefault();
      c.run();
    }
  }

  onKeyUp(ev) {
    if (ev.code === 'Space') this.endTalk();
  }

  endTalk() {
    if (!this.talking) return;
    this.talking = false;
    document.body.classList.remove('talking');
    this.ptt.setMic(false);
  }
}

function keyName(k) { return k.length === 1 ? k.toUpperCase() : k; }

/** Keys typed into a field belong to the field. */
function typing(el) {
  if (!el || !el.tagName) return false;
  const t = el.tagName;
  return t === 'INPUT' || t === 'TEXTAREA' || t === 'SELECT' || el.isContentEditable;
}
