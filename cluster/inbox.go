package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// outMsg is one PUBLISH waiting for the publisher.
type outMsg struct {
	channel string
	data    []byte
	link    *Link // nil for replies to messages without a link
	kind    kind
}

// publishBatch bounds how many queued messages one pipeline carries.
const publishBatch = 256

// publishLoop is the node's only publisher: it drains the out queue in
// pipelines, so messages leave in queue order (per link: in sequence).
func (n *Node) publishLoop() {
	defer n.wg.Done()
	batch := make([]outMsg, 0, publishBatch)
	for {
		select {
		case <-n.ctx.Done():
			n.flushOnClose(batch[:0])
			return
		case m := <-n.out:
			batch = append(batch[:0], m)
		}
		batch = drain(n.out, batch)
		// Not n.ctx: what was queued before Close (links' closes) must
		// still leave. The timeout bounds how long Close waits for it.
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.TTL)
		n.publish(ctx, batch)
		cancel()
	}
}

func drain(ch chan outMsg, batch []outMsg) []outMsg {
	for len(batch) < publishBatch {
		select {
		case m := <-ch:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// flushOnClose publishes what was queued before Close (the links' close
// messages), briefly, so peers hear of it rather than wait for the TTL.
func (n *Node) flushOnClose(batch []outMsg) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for batch = drain(n.out, batch); len(batch) > 0; batch = drain(n.out, batch[:0]) {
		n.publish(ctx, batch)
		if ctx.Err() != nil {
			return
		}
	}
}

func (n *Node) publish(ctx context.Context, batch []outMsg) {
	pipe := n.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(batch))
	for i, m := range batch {
		cmds[i] = pipe.Publish(ctx, m.channel, m.data)
	}
	_, err := pipe.Exec(ctx)
	if err != nil && n.ctx.Err() == nil {
		n.noteError("relay publish", err)
	}
	for i, m := range batch {
		if m.link == nil {
			continue // a reply to a message without a link
		}
		m.link.pending.Add(-1)
		m.link.pendingBytes.Add(-int64(len(m.data)))
		n.outBytes.Add(-int64(len(m.data)))
		switch {
		case cmds[i].Err() != nil:
			m.link.closeLocal(CodeRelayDown, "relay publish failed: "+cmds[i].Err().Error(), false)
		case cmds[i].Val() == 0 && m.kind != kindClose:
			m.link.closeLocal(CodeNodeGone, "node "+m.link.peer+" is not listening", false)
		case m.kind == kindFrame:
			n.met.frames.WithLabelValues("out").Inc()
		}
	}
}

// receiveLoop reads the node's inbox. Any interruption of the
// subscription may have lost messages, so it ends every link at once with
// a clear reason instead of letting a gap surface later (or never).
func (n *Node) receiveLoop() {
	defer n.wg.Done()
	for {
		v, err := n.pubsub.ReceiveTimeout(n.ctx, n.cfg.TTL)
		if n.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet inbox: make sure the connection is alive.
				if err = n.pubsub.Ping(n.ctx); err == nil {
					continue
				}
			}
			n.noteError("relay receive", err)
			n.closeAll(CodeRelayDown, "relay interrupted: "+err.Error())
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(n.cfg.TTL / 3):
			}
			continue
		}
		switch m := v.(type) {
		case *redis.Message:
			n.handle([]byte(m.Payload))
		case *redis.Subscription:
			// The first confirmation was read in Start: this is go-redis
			// subscribing again on a new connection.
			if m.Kind == "subscribe" {
				n.log.Warn("relay inbox subscribed again after a Redis reconnect; closing links")
				n.closeAll(CodeRelayDown, "relay interrupted: Redis connection re-established, messages may be lost")
			}
		}
	}
}

func (n *Node) handle(b []byte) {
	m, err := decode(b)
	if err != nil {
		if s, ok := n.badMsgLimit.allow(); ok {
			n.log.Warn("bad relay message dropped", "err", err, "suppressed", s)
		}
		return
	}
	if m.kind == kindOpen {
		n.handleOpen(m)
		return
	}
	n.mu.Lock()
	var l *Link
	if m.dir == fromDialer {
		l = n.accepted[acceptKey{m.from, m.link}]
	} else if l = n.dialed[m.link]; l != nil && l.peer != m.from {
		l = nil
	}
	n.mu.Unlock()
	if l == nil {
		if m.kind != kindClose {
			n.replyClose(m, CodeUnknownLink, "no such relay link on node "+n.id)
		}
		return
	}
	l.receive(m)
}

// replyClose answers a message that has no link here (refused open,
// unknown link) without creating one.
func (n *Node) replyClose(m message, code int, reason string) {
	dir := fromAcceptor
	if m.dir == fromAcceptor {
		dir = fromDialer
	}
	r := message{kind: kindClose, dir: dir, link: m.link, from: n.id, code: code, reason: reason}
	select {
	case n.out <- outMsg{channel: inboxKey(m.from), data: r.encode(), kind: kindClose}:
	default: // the dialer's open times out instead
	}
}

func (n *Node) handleOpen(m message) {
	if err := checkName("node id", m.from); err != nil {
		return // no inbox to answer to
	}
	if err := checkName("room", m.room); err != nil {
		n.replyClose(m, CodeRefused, err.Error())
		return
	}
	if len(m.body) > n.cfg.MaxFrame {
		n.replyClose(m, CodeTooLarge, fmt.Sprintf("first frame of %d bytes over the limit %d", len(m.body), n.cfg.MaxFrame))
		return
	}
	if n.cfg.Accept == nil {
		n.replyClose(m, CodeRefused, "node "+n.id+" does not accept relay links")
		return
	}
	k := acceptKey{m.from, m.link}
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		n.replyClose(m, CodeNodeClosing, "node "+n.id+" is shutting down")
		return
	}
	if n.accepted[k] != nil {
		n.mu.Unlock()
		return // a duplicate open
	}
	if len(n.dialed)+len(n.accepted) >= n.cfg.MaxLinks {
		n.mu.Unlock()
		n.replyClose(m, CodeTooManyLinks, fmt.Sprintf("node %s has %d relay links open", n.id, n.cfg.MaxLinks))
		return
	}
	l := n.newLink(m.link, false, m.from, m.room, append([]byte(nil), m.body...))
	n.accepted[k] = l
	n.mu.Unlock()
	n.met.links.Inc()
	l.mu.Lock()
	ok := l.enqueueLocked(message{kind: kindAck}, true)
	l.mu.Unlock()
	if !ok {
		l.closeLocal(CodeOverflow, "relay send queue full", false)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.cfg.Accept(l)
	}()
}

// links returns every open link, both directions.
func (n *Node) links() []*Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Link, 0, len(n.dialed)+len(n.accepted))
	for _, l := range n.dialed {
		out = append(out, l)
	}
	for _, l := range n.accepted {
		out = append(out, l)
	}
	return out
}

func (n *Node) closeAll(code int, reason string) {
	for _, l := range n.links() {
		l.closeLocal(code, reason, true)
	}
}
