// Package whip serves WHIP (RFC 9725) and WHEP: encoders such as OBS
// publish into a room with one HTTP POST of an SDP offer, and players
// watch a room the same way.
//
// Each WHIP or WHEP session is a gateway: one PeerConnection towards the
// client, on the SFU's media ports, and an SDK bot that joins the room
// with the client's bearer token, over the node's own WebSocket. The
// client therefore gets exactly the grants, presence and limits of the
// WebSocket protocol, and the media plane and rooms need no second kind of
// participant. The price is one more hop inside the node (an extra SRTP
// decrypt and encrypt per packet).
package whip

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Config connects the endpoints to a node.
type Config struct {
	// Verify checks a bearer token (the same JWT the WebSocket join takes).
	Verify func(token string) (*auth.Claims, error)
	// ServerURL is where the gateway bots join: the node itself.
	ServerURL func() string
	// NewPeerConnection makes a client-facing PeerConnection, on the
	// SFU's media ports.
	NewPeerConnection func() (*webrtc.PeerConnection, error)
	// ICEServers are the STUN and TURN servers (with credentials for the
	// identity) offered to a client that reached the node at host, as Link
	// headers of the 201 answer (RFC 9725 4.6). Optional.
	ICEServers func(host, identity string) []protocol.ICEServer
	// MaxSessions bounds the WHIP and WHEP sessions of this node [256].
	MaxSessions int
	// ConnectTimeout ends a session whose client has not connected by
	// then [30s].
	ConnectTimeout time.Duration
	Logger         *slog.Logger
}

// Paths the endpoints are served under; sessions live below them.
const (
	WHIPPath = "/whip"
	WHEPPath = "/whep"
)

const maxSDPBytes = 64 << 10

// Server holds the live sessions.
type Server struct {
	cfg Config
	log *slog.Logger
	ctx context.Context

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session
	wg       sync.WaitGroup // one per session
}

// New makes the endpoints; sessions end when ctx does, or at Close.
func New(ctx context.Context, cfg Config) *Server {
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 256
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Logger, ctx: ctx, sessions: map[string]*session{}}
}

// Mount adds the endpoints to a mux.
func (s *Server) Mount(mux *http.ServeMux) {
	for _, base := range []string{WHIPPath, WHEPPath} {
		mux.HandleFunc("POST "+base, s.handlePost)
		mux.HandleFunc("PATCH "+base+"/{id}", s.handlePatch)
		mux.HandleFunc("DELETE "+base+"/{id}", s.handleDelete)
		mux.HandleFunc("OPTIONS "+base, s.handleOptions)
		mux.HandleFunc("OPTIONS "+base+"/{id}", s.handleOptions)
	}
}

// Close ends every session and waits for them. A nil Server (a node
// that never started) has nothing to close.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		if ss != nil { // nil: reserved by a POST still starting; it sees closed
			sessions = append(sessions, ss)
		}
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.end()
	}
	s.wg.Wait()
}

// Sessions is how many sessions are live.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Server) handleOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "OPTIONS, POST, PATCH, DELETE")
	w.Header().Set("Accept-Post", "application/sdp")
	w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusNoContent)
}

// bearer reads and checks the Authorization header; on failure it has
// answered 401.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (string, *auth.Claims, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		unauthorized(w, "send the room's access token as Authorization: Bearer <token>")
		return "", nil, false
	}
	tok = strings.TrimSpace(tok)
	claims, err := s.cfg.Verify(tok)
	if err != nil {
		unauthorized(w, err.Error())
		return "", nil, false
	}
	return tok, claims, true
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="huddle"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

func hasType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

func (s *Server) handlePost(w http.ResponseWriter, r *http.Request) {
	publish := strings.HasPrefix(r.URL.Path, WHIPPath)
	tok, claims, ok := s.bearer(w, r)
	if !ok {
		return
	}
	switch {
	case publish && !claims.Grants.Publish:
		http.Error(w, "the token has no publish grant", http.StatusForbidden)
		return
	case !publish && !claims.Grants.Subscribe:
		http.Error(w, "the token has no subscribe grant", http.StatusForbidden)
		return
	case !hasType(r, "application/sdp"):
		http.Error(w, "the body must be an SDP offer (Content-Type: application/sdp)", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBytes))
	if err != nil {
		http.Error(w, fmt.Sprintf("SDP offer larger than %d bytes", maxSDPBytes), http.StatusRequestEntityTooLarge)
		return
	}
	id, err := s.reserve()
	if err != nil {
		w.Header().Set("Retry-After", "10")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	ss, answer, err := s.start(r.Context(), id, tok, claims, publish, string(body))
	if err != nil {
		s.release(id)
		var bad badOffer
		if errors.As(err, &bad) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Warn("whip/whep session failed to start", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	base := WHEPPath
	if publish {
		base = WHIPPath
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", base+"/"+id)
	w.Header().Set("ETag", ss.etag())
	if s.cfg.ICEServers != nil {
		for _, l := range linkHeaders(s.cfg.ICEServers(r.Host, claims.Identity)) {
			w.Header().Add("Link", l)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// reserve takes a session slot under the bound.
func (s *Server) reserve() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("server is shutting down")
	}
	if len(s.sessions) >= s.cfg.MaxSessions {
		return "", fmt.Errorf("this node holds its maximum of %d WHIP/WHEP sessions; try again later", s.cfg.MaxSessions)
	}
	id := randomID()
	s.sessions[id] = nil // reserved until started
	return id, nil
}

func (s *Server) release(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

// lookup finds a session and checks that the request carries its token.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*session, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	ss := s.sessions[r.PathValue("id")]
	s.mu.Unlock()
	switch {
	case ss == nil:
		http.Error(w, "no such session (it ended, or was never created)", http.StatusNotFound)
		return nil, false
	case !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(ss.token)) != 1:
		unauthorized(w, "send the token the session was created with as Authorization: Bearer <token>")
		return nil, false
	case ss.publish != strings.HasPrefix(r.URL.Path, WHIPPath):
		http.Error(w, "no such session (it ended, or was never created)", http.StatusNotFound)
		return nil, false
	}
	return ss, true
}

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.lookup(w, r)
	if !ok {
		return
	}
	if !hasType(r, "application/trickle-ice-sdpfrag") {
		http.Error(w, "the body must be Content-Type: application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
		return
	}
	if r.Header.Get("If-Match") == "*" {
		// RFC 9725 4.3: a session with trickle but no ICE restart answers 422.
		http.Error(w, "ICE restarts are not supported: end the session (DELETE) and POST a new offer", http.StatusUnprocessableEntity)
		return
	}
	if m := r.Header.Get("If-Match"); m != "" && m != ss.etag() {
		http.Error(w, "the session's ICE credentials have changed", http.StatusPreconditionFailed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBytes))
	if err != nil {
		http.Error(w, fmt.Sprintf("body larger than %d bytes", maxSDPBytes), http.StatusRequestEntityTooLarge)
		return
	}
	frag, err := parseSDPFrag(string(body))
	if err != nil {
		http.Error(w, "trickle fragment: "+err.Error(), http.StatusBadRequest)
		return
	}
	if frag.ufrag != "" && frag.ufrag != ss.remoteUfrag {
		http.Error(w, "the fragment's ice-ufrag is not this session's: ICE restarts are not supported", http.StatusUnprocessableEntity)
		return
	}
	ss.mu.Lock()
	ss.candidates += len(frag.candidates)
	tooMany := ss.candidates > maxSessionCandidates
	ss.mu.Unlock()
	if tooMany {
		http.Error(w, fmt.Sprintf("more than %d candidates for one session", maxSessionCandidates), http.StatusBadRequest)
		return
	}
	for _, c := range frag.candidates {
		if err := ss.pc.AddICECandidate(c); err != nil {
			http.Error(w, "candidate refused: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.lookup(w, r)
	if !ok {
		return
	}
	ss.end()
	<-ss.done
	w.WriteHeader(http.StatusOK)
}

// linkHeaders writes ICE servers as RFC 9725 Link header values.
func linkHeaders(servers []protocol.ICEServer) []string {
	var out []string
	for _, is := range servers {
		for _, u := range is.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if is.Username != "" {
				v += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, is.Username, is.Credential)
			}
			out = append(out, v)
		}
	}
	return out
}

func randomID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)
}
