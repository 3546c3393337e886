package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// devKeyFile keeps dev mode's generated key across restarts, so that
// tokens handed out before a restart still work after it.
const devKeyFile = "dev-key.json"

type devKey struct {
	Key    string `json:"key"`
	Secret string `json:"secret"`
}

// loadOrCreateDevKey returns the dev-mode API key of this data directory.
func loadOrCreateDevKey(dataDir string) (devKey, error) {
	path := filepath.Join(dataDir, devKeyFile)
	var k devKey
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &k); err != nil || k.Key == "" || k.Secret == "" {
			return devKey{}, fmt.Errorf("dev key %s is corrupt (delete it to make a new one): %v", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return devKey{}, fmt.Errorf("read dev key: %w", err)
	}
	k.Key, k.Secret = auth.NewKeyPair()
	data, _ = json.Marshal(k)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return devKey{}, fmt.Errorf("write dev key: %w", err)
	}
	return k, nil
}

// devTokenTTL is long enough for a day of local testing.
const devTokenTTL = 24 * time.Hour

// handleDevToken mints a token for a name and room. It answers only in dev
// mode and only to loopback clients that came through no proxy: a proxy on
// the same machine would make every remote user look local.
func (n *Node) handleDevToken(w http.ResponseWriter, r *http.Request) {
	if !n.devMode {
		httpError(w, http.StatusNotFound, "dev tokens exist only in dev mode")
		return
	}
	if !fromLoopback(r) {
		httpError(w, http.StatusForbidden, "dev tokens are given only to loopback clients")
		return
	}
	if err := n.sig.CheckHost(r); err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	name := strings.TrimSpace(r.URL.Query().Get("name"))
	room := strings.TrimSpace(r.URL.Query().Get("room"))
	if err := checkName("name", name); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkName("room", room); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	identity := strings.ToLower(strings.Join(strings.Fields(name), "-")) + "-" + randomHex(4)
	tok, err := auth.Mint(n.dev.Key, n.dev.Secret, auth.Claims{
		Identity: identity, Name: name, Room: room, Grants: protocol.AllGrants(),
	}, devTokenTTL)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "identity": identity})
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}

func checkName(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty", what)
	case utf8.RuneCountInString(v) > 64:
		return fmt.Errorf("%s is longer than 64 characters", what)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }):
		return fmt.Errorf("%s has control characters", what)
	}
	return nil
}

func fromLoopback(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Real-Ip") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
