package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureWindow is how far a signed request's timestamp may be from the
// server's clock: older (or replayed later) requests are refused.
const SignatureWindow = 5 * time.Minute

// signatureScheme names the Authorization scheme of API-key-signed
// requests: "HuddleKey key=K,ts=UNIX,sig=HEX".
const signatureScheme = "HuddleKey "

// who is whom a request was authorised as.
type who struct {
	allRooms bool   // an API key, or a roomAdmin token for AllRooms
	room     string // the room of a token
	admin    bool   // the token has the roomAdmin grant
}

// Sign makes the Authorization header of a request signed with an API key:
// HMAC-SHA256 with the secret over the method, the path with its query,
// the Unix time and the SHA-256 of the body.
func Sign(key, secret, method, pathAndQuery string, body []byte, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return fmt.Sprintf("%skey=%s,ts=%s,sig=%s", signatureScheme, key, ts, signature(secret, method, pathAndQuery, ts, body))
}

func signature(secret, method, pathAndQuery, ts string, body []byte) string {
	sum := sha256.Sum256(body)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s", method, pathAndQuery, ts, hex.EncodeToString(sum[:]))
	return hex.EncodeToString(mac.Sum(nil))
}

// authenticate finds who sent r: a bearer token (header, or the
// access_token query parameter that EventSource needs), or a signature.
// It replaces r.Body by a buffered copy when it had to read it.
func (a *API) authenticate(r *http.Request) (who, string) {
	h := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(h, signatureScheme):
		return a.checkSignature(r, strings.TrimPrefix(h, signatureScheme))
	case strings.HasPrefix(h, "Bearer "):
		return a.checkToken(strings.TrimPrefix(h, "Bearer "))
	case h == "" && r.URL.Query().Get("access_token") != "":
		return a.checkToken(r.URL.Query().Get("access_token"))
	case h == "":
		return who{}, "no credentials: send Authorization: Bearer <token with roomAdmin> or a HuddleKey signature"
	}
	return who{}, "unknown Authorization scheme"
}

func (a *API) checkToken(tok string) (who, string) {
	c, err := a.keys.Verify(tok)
	if err != nil {
		return who{}, err.Error()
	}
	return who{allRooms: c.Room == AllRooms && c.Grants.RoomAdmin, room: c.Room, admin: c.Grants.RoomAdmin}, ""
}

func (a *API) checkSignature(r *http.Request, params string) (who, string) {
	var key, ts, sig string
	for _, kv := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "key":
			key = v
		case "ts":
			ts = v
		case "sig":
			sig = v
		}
	}
	secret, ok := a.keys[key]
	if !ok {
		return who{}, fmt.Sprintf("unknown API key %q", key)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return who{}, "signature: bad ts"
	}
	if d := a.now().Sub(time.Unix(sec, 0)); d > SignatureWindow || d < -SignatureWindow {
		return who{}, fmt.Sprintf("signature: timestamp is %v away from the server's clock (window %v; check the clocks)", d.Round(time.Second), SignatureWindow)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return who{}, "signature: body unreadable or over 64 KiB"
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	want := signature(secret, r.Method, r.URL.RequestURI(), ts, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return who{}, "signature does not match (wrong secret, or the request was altered)"
	}
	return who{allRooms: true, admin: true}, ""
}

// serverWide allows only API keys and server-wide admin tokens.
func (a *API) serverWide(h http.HandlerFunc) http.HandlerFunc {
	return a.guard(h, func(w who, _ *http.Request) bool { return w.allRooms })
}

// roomScoped allows server-wide admins and roomAdmin tokens of the room.
func (a *API) roomScoped(h http.HandlerFunc) http.HandlerFunc {
	return a.guard(h, func(w who, r *http.Request) bool {
		return w.allRooms || (w.admin && w.room == r.PathValue("room"))
	})
}

// roomReader allows admins and any participant token of the room: a
// room's own events are no secret to its members.
func (a *API) roomReader(h http.HandlerFunc) http.HandlerFunc {
	return a.guard(h, func(w who, r *http.Request) bool {
		return w.allRooms || w.room == r.PathValue("room")
	})
}

func (a *API) guard(h http.HandlerFunc, allowed func(who, *http.Request) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		id, why := a.authenticate(r)
		if why != "" {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, why)
			return
		}
		if !allowed(id, r) {
			writeError(w, http.StatusForbidden, CodeForbidden, "these credentials have no admin grant for this (a roomAdmin token for the room, or for room \"*\" for the whole server, or an API key signature)")
			return
		}
		h(w, r)
	}
}
