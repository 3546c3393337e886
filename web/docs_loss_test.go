package web_test

// Losing one message on a real data channel, as a cut connection would:
// a script installed before the page loads wraps the collab channel the
// page creates, so that a test can drop the next submit the page sends or
// the next ack the server sends it. Everything else is the real page and
// the real server.

import (
	"fmt"
	"testing"
)

// lossJS: window.__huddleLose = 'submit' drops submits until cleared,
// 'ack' drops acks; window.__huddleLost counts what was dropped. The same
// in sessionStorage.huddleLose outlives a reload of the tab (a connection
// that stays cut). Its message listener is added before the page's, so
// stopping the event hides it from the page.
const lossJS = `(() => {
  const real = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (label, init) {
    const ch = real.call(this, label, init);
    if (label !== 'collab') return ch;
    const typeOf = (s) => { try { return typeof s === 'string' && s[0] === '{' ? JSON.parse(s).type : ''; } catch { return ''; } };
    const lost = () => { window.__huddleLost = (window.__huddleLost || 0) + 1; };
    const lose = () => window.__huddleLose || sessionStorage.getItem('huddleLose') || '';
    const send = ch.send.bind(ch);
    ch.send = (s) => {
      if (lose() === 'submit' && typeOf(s) === 'submit') { lost(); return; }
      send(s);
    };
    ch.addEventListener('message', (ev) => {
      if (lose() === 'ack' && typeOf(ev.data) === 'ack') { lost(); ev.stopImmediatePropagation(); }
    });
    return ch;
  };
})();`

// injectLoss installs lossJS in b's pages.
func injectLoss(t *testing.T, b *browser) {
	t.Helper()
	b.addScript(lossJS)
}

// loseNext makes p's page drop its submits ("submit") or the acks it gets
// ("ack") until called with "".
func loseNext(t *testing.T, p *docsPerson, what string) {
	t.Helper()
	if _, err := eval[bool](p.browser, fmt.Sprintf(`(window.__huddleLose = %q, true)`, what)); err != nil {
		t.Fatal(err)
	}
}
