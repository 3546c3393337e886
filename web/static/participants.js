// The participant list: everyone in the room with their microphone, camera,
// hand and connection state, raised hands first. Names go in through
// textContent only.

import { icon } from './icons.js';

export class ParticipantList {
  /**
   * @param {HTMLElement} panel the aside
   * @param {import('./roomstate.js').RoomState} room
   */
  constructor(panel, room) {
    this.panel = panel;
    this.room = room;
    this.list = panel.querySelector('#people-list');
    this.count = panel.querySelector('#people-count');
    this.onToggle = () => {};
    panel.querySelector('#people-close').addEventListener('click', () => this.show(false));
    room.on(() => { if (!this.panel.hidden) this.render(); this.renderCount(); });
  }

  get open() { return !this.panel.hidden; }

  show(open = this.panel.hidden) {
    this.panel.hidden = !open;
    if (open) this.render();
    this.onToggle(open);
  }

  renderCount() { this.count.textContent = this.room.people.size ? `(${this.room.people.size})` : ''; }

  render() {
    this.renderCount();
    const people = [...this.room.people.values()].sort((a, b) =>
      (b.hand - a.hand) || (b.self - a.self) || a.name.localeCompare(b.name));
    const speaking = new Set(this.room.speakers);
    this.list.replaceChildren(...people.map((p) => {
      const li = document.createElement('li');
      li.dataset.participantId = p.id;
      li.classList.toggle('speaking', speaking.has(p.id));
      const name = document.createElement('span');
      name.className = 'person-name';
      name.textContent = p.self ? `${p.name} (you)` : p.name;
      li.append(name);
      const flags = document.createElement('span');
      flags.className = 'person-flags';
      const flag = (cls, text, title) => {
        const s = document.createElement('span');
        s.className = `pflag ${cls}`;
        if (text.length > 1) s.append(icon(text));
        else s.textContent = text;
        s.title = title;
        s.setAttribute('aria-label', title);
        flags.append(s);
      };
      if (p.hand) flag('hand', 'hand', 'Hand raised');
      if (this.room.micOff(p.id)) flag('mic-off', 'micOff', 'Microphone off');
      else flag('mic-on', 'mic', speaking.has(p.id) ? 'Speaking' : 'Microphone on');
      if (this.room.cameraOff(p.id)) flag('cam-off', 'camOff', 'Camera off');
      if (p.quality) flag(`q-${p.quality.quality}`, '●', `Connection ${p.quality.quality}`);
      li.append(flags);
      return li;
    }));
  }
}
