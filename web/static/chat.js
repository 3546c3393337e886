// The chat panel: room messages (stored by the server, with its ids and
// times), an unread count while the panel is closed or the tab is in the
// background, and typing indicators that expire by themselves. The panel
// is closed until asked for (call-ui.js opens it from the control bar,
// which shows the unread count); opening it marks everything read.
//
// Delivery is at least once: a message the server already sent (history,
// a replay after a resume) is dropped by id. Our own messages wait in
// `pending` until the server echoes them; after a reconnect they are sent
// again with the same clientId, and the server stores each once. When the
// server could not store one (code `unavailable`: in cluster mode its store
// is away or the room is moving), the composer says so and sends what is
// pending again a few times, a few seconds apart (refused).

const TYPING_EVERY_MS = 2000; // we say "typing" at most this often
const CHAT_RETRIES = 3; // resends after `unavailable`, then wait for a reconnect or the next message
const CHAT_RETRY_MS = 2000;

export class ChatPanel {
  /**
   * @param {HTMLElement} root an empty element the panel fills
   * @param {object} opts
   * @param {(type: string, fields: object) => boolean} opts.send
   * @param {(id: string) => string} opts.nameOf participant id -> name
   * @param {() => string} opts.selfId our participant id (our own messages are never unread)
   */
  constructor(root, { send, nameOf, selfId }) {
    this.root = root;
    this.send = send;
    this.nameOf = nameOf;
    this.selfId = selfId || (() => '');
    this.onChange = () => {}; // opened, closed, or the unread count changed
    this.seen = new Set();
    this.messages = [];
    this.pending = new Map(); // clientId -> text
    this.unread = 0;
    this.open = false;
    root.hidden = true;
    this.typers = new Map(); // participant id -> expiry timer
    this.lastTypingSent = 0;

    root.innerHTML = `
      <header class="chat-head">
        <h2>Chat <span class="chat-unread" hidden></span></h2>
        <button type="button" class="small secondary chat-toggle" title="Close the chat">Close</button>
      </header>
      <div class="chat-body">
        <ol class="chat-list" aria-live="polite"></ol>
        <p class="chat-typing" aria-live="polite"></p>
        <p class="chat-notice" role="status" hidden></p>
        <form class="chat-form" autocomplete="off">
          <input class="chat-input" type="text" maxlength="4000" placeholder="Message" aria-label="Chat message">
          <button type="submit" class="small">Send</button>
        </form>
      </div>`;
    this.list = root.querySelector('.chat-list');
    this.body = root.querySelector('.chat-body');
    this.badge = root.querySelector('.chat-unread');
    this.typingLine = root.querySelector('.chat-typing');
    this.notice = root.querySelector('.chat-notice');
    this.retries = 0;
    this.retryTimer = 0;
    this.input = root.querySelector('.chat-input');
    // Close hides the whole panel (no empty column); the Chat control opens it.
    root.querySelector('.chat-toggle').addEventListener('click', () => this.show(false));
    root.querySelector('.chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = '';
      this.post(text);
    });
    this.input.addEventListener('input', () => {
      const now = Date.now();
      if (now - this.lastTypingSent < TYPING_EVERY_MS) return;
      this.lastTypingSent = now;
      this.send('typing', { typing: true });
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden && this.open) this.markRead(); });
  }

  /** Opens or closes the panel (toggles without an argument). */
  show(open = !this.open) {
    this.open = open;
    this.root.hidden = !open;
    if (open) {
      this.markRead();
      this.list.lastElementChild && this.list.lastElementChild.scrollIntoView({ block: 'nearest' });
    }
    this.onChange();
  }

  /** Posts a message; it shows once the server has stored it. */
  post(text) {
    // getRandomValues works on plain-http pages too (randomUUID does not).
    const clientId = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
    // Messages whose resends ran out go first, with the same clientIds.
    if (this.retries >= CHAT_RETRIES) this.resend();
    this.retries = 0;
    this.pending.set(clientId, text);
    this.send('chat', { clientId, text });
    return clientId;
  }

  /**
   * The server refused a chat message. With `unavailable` (nothing was
   * stored; retryable) the composer says so and what is pending goes again
   * after a pause, up to CHAT_RETRIES times; false for other codes (the
   * page's usual error notice).
   */
  refused(err) {
    if (err.code !== 'unavailable') return false;
    if (this.retryTimer) return true; // a resend is already planned
    if (this.retries >= CHAT_RETRIES) {
      this.say('Not sent: the server could not store your message. It goes again with your next message or after a reconnect.');
      return true;
    }
    this.retries++;
    this.say('Not sent yet: the server could not store your message; retrying…');
    this.retryTimer = setTimeout(() => { this.retryTimer = 0; this.resend(); }, CHAT_RETRY_MS / 2 + Math.random() * CHAT_RETRY_MS);
    return true;
  }

  say(text) {
    this.notice.textContent = text;
    this.notice.hidden = !text;
  }

  /** After a reconnect: what the server has not echoed goes again. */
  resend() {
    for (const [clientId, text] of this.pending) this.send('chat', { clientId, text });
  }

  /** A message from the server (history, replay or live). */
  add(m) {
    if (this.pending.delete(m.clientId) && this.pending.size === 0) {
      this.retries = 0;
      this.say('');
    }
    if (!m.id || this.seen.has(m.id)) return;
    this.seen.add(m.id);
    this.messages.push(m);
    const li = document.createElement('li');
    const who = document.createElement('b');
    who.textContent = m.name || m.identity || this.nameOf(m.from) || 'Someone';
    const when = document.createElement('time');
    when.dateTime = new Date(m.ts).toISOString();
    when.textContent = new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const text = document.createElement('span');
    text.textContent = m.text;
    li.append(who, ' ', when, ' ', text);
    this.list.append(li);
    li.scrollIntoView({ block: 'nearest' });
    this.stopTyping(m.from);
    if ((!this.open || document.hidden) && m.from !== this.selfId()) {
      this.unread++;
      this.showUnread();
    }
  }

  markRead() {
    if (this.unread === 0) return;
    this.unread = 0;
    this.showUnread();
  }

  showUnread() {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.onChange();
  }

  /** Someone's typing indicator; it expires unless renewed. */
  typing(msg) {
    if (!msg.typing) return this.stopTyping(msg.participantId);
    clearTimeout(this.typers.get(msg.participantId));
    this.typers.set(msg.participantId, setTimeout(() => this.stopTyping(msg.participantId), msg.expiresIn || 6000));
    this.showTyping();
  }

  stopTyping(id) {
    if (!this.typers.has(id)) return;
    clearTimeout(this.typers.get(id));
    this.typers.delete(id);
    this.showTyping();
  }

  showTyping() {
    const names = [...this.typers.keys()].map((id) => this.nameOf(id) || 'Someone');
    this.typingLine.textContent = names.length === 0 ? ''
      : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  /** Handles the meeting's events (joined carries the history). */
  onEvent(msg) {
    switch (msg.type) {
      case 'joined':
        for (const m of msg.chat || []) this.add(m);
        this.resend();
        return;
      case 'chatMessage': return this.add(msg);
      case 'typing': return this.typing(msg);
    }
  }
}
