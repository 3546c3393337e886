package sdktest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/huddle-rtc/huddle/node"
	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Lazy is a server started on first use, for godoc examples, which get no
// testing.T. Close it from TestMain after m.Run.
type Lazy struct {
	once sync.Once
	srv  *node.Node
	dir  string
}

func (l *Lazy) server() *node.Node {
	l.once.Do(func() {
		var err error
		if l.dir, err = os.MkdirTemp("", "huddle-example"); err != nil {
			panic(err)
		}
		l.srv, err = node.New(node.Config{
			HTTPAddr: "127.0.0.1:0", MediaUDPAddr: "127.0.0.1:0", MediaTCPAddr: "127.0.0.1:0", DataDir: l.dir,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		})
		if err != nil {
			panic(err)
		}
		if err := l.srv.Start(context.Background()); err != nil {
			panic(err)
		}
	})
	return l.srv
}

// URL starts the server if needed and returns its address.
func (l *Lazy) URL() string { return l.server().URL() }

// Token mints a token with every grant, as `huddle token` would.
func (l *Lazy) Token(identity, room string) string {
	key, secret, _ := l.server().DevKey()
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: identity, Name: identity, Room: room, Grants: protocol.AllGrants()}, time.Hour)
	if err != nil {
		panic(err)
	}
	return tok
}

// Close stops the server if it was started.
func (l *Lazy) Close() {
	if l.srv != nil {
		l.srv.Close()
		os.RemoveAll(l.dir)
	}
}
