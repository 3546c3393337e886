// Package admin is the operator's API of a Huddle server: JSON over HTTP
// under /api/v1 (rooms, participants, tracks, tokens), the server-sent
// event stream of room events, and /debug/pprof. It knows rooms only
// through the Backend interface, which package signaling implements, and
// is mounted on the server's mux by Mount.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/huddle-rtc/huddle/signaling/auth"
	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// AllRooms is the room a server-wide admin token names: a token for room
// "*" with the roomAdmin grant may do everything this API offers; a
// roomAdmin token for one room may see and manage that room only.
const AllRooms = "*"

// Track is a published track as the API shows it.
type Track struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Codec  string `json:"codec"`
	Muted  bool   `json:"muted"`
}

// Quality is a participant's last measured connection quality.
type Quality struct {
	Level       string  `json:"level"`
	LossPercent float64 `json:"loss"`
	JitterMs    float64 `json:"jitterMs"`
	RTTMs       float64 `json:"rttMs"`
}

// Participant is one member of a room.
type Participant struct {
	ID       string          `json:"id"`
	Identity string          `json:"identity"`
	Name     string          `json:"name"`
	Grants   protocol.Grants `json:"grants"`
	Presence string          `json:"presence"`
	Tracks   []Track         `json:"tracks"`
	Quality  *Quality        `json:"quality,omitempty"`
}

// Room is one room with its participants (omitted in lists).
type Room struct {
	Name            string        `json:"name"`
	NumParticipants int           `json:"numParticipants"`
	Participants    []Participant `json:"participants,omitempty"`
}

// Backend is what the API needs of the server. Errors wrap ErrNotFound
// when the room, participant or track does not exist.
type Backend interface {
	Rooms() []Room
	Room(name string) (Room, bool)
	MuteTrack(room, trackID string, muted bool) error
	RemoveParticipant(room, participantID string) error
	UpdateGrants(room, participantID string, g protocol.Grants) (Participant, error)
	CloseRoom(name string) error
}

// ErrNotFound is wrapped by Backend errors for things that do not exist.
var ErrNotFound = errors.New("not found")

// Error codes of the API's JSON errors.
const (
	CodeUnauthorized = "unauthorized" // no credentials, or bad ones
	CodeForbidden    = "forbidden"    // valid credentials without the admin grant for this
	CodeNotFound     = "not_found"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
)

// API serves /api/v1 and /debug/pprof.
type API struct {
	backend   Backend
	keys      auth.Keys
	events    *Bus
	now       func() time.Time
	heartbeat time.Duration
}

// New makes the API over a backend, checking credentials against keys.
// Idle event streams get a heartbeat every heartbeat (DefaultHeartbeat
// when 0).
func New(b Backend, keys auth.Keys, events *Bus, heartbeat time.Duration) *API {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	return &API{backend: b, keys: keys, events: events, now: time.Now, heartbeat: heartbeat}
}

// maxBody bounds a request body: every request of this API is small.
const maxBody = 64 << 10

// Mount adds the API's routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rooms", a.serverWide(a.listRooms))
	mux.HandleFunc("GET /api/v1/rooms/{room}", a.roomScoped(a.getRoom))
	mux.HandleFunc("DELETE /api/v1/rooms/{room}", a.roomScoped(a.closeRoom))
	mux.HandleFunc("DELETE /api/v1/rooms/{room}/participants/{id}", a.roomScoped(a.removeParticipant))
	mux.HandleFunc("PATCH /api/v1/rooms/{room}/participants/{id}", a.roomScoped(a.updateParticipant))
	mux.HandleFunc("POST /api/v1/rooms/{room}/tracks/{track}/mute", a.roomScoped(a.muteTrack))
	mux.HandleFunc("POST /api/v1/tokens", a.serverWide(a.mintToken))
	mux.HandleFunc("GET /api/v1/events", a.serverWide(a.streamEvents))
	mux.HandleFunc("GET /api/v1/rooms/{room}/events", a.roomReader(a.streamEvents))
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	}
	for _, m := range []string{"GET", "POST", "PATCH", "PUT", "DELETE"} {
		mux.HandleFunc(m+" /api/v1/", notFound)
	}
	mux.HandleFunc("GET /debug/pprof/", a.serverWide(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/cmdline", a.serverWide(pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", a.serverWide(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", a.serverWide(pprof.Symbol))
	mux.HandleFunc("POST /debug/pprof/symbol", a.serverWide(pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", a.serverWide(pprof.Trace))
}

func (a *API) listRooms(w http.ResponseWriter, _ *http.Request) {
	rooms := a.backend.Rooms()
	if rooms == nil {
		rooms = []Room{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
}

func (a *API) getRoom(w http.ResponseWriter, r *http.Request) {
	room, ok := a.backend.Room(r.PathValue("room"))
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no room %q", r.PathValue("room")))
		return
	}
	if room.Participants == nil {
		room.Participants = []Participant{}
	}
	writeJSON(w, http.StatusOK, room)
}

func (a *API) closeRoom(w http.ResponseWriter, r *http.Request) {
	if err := a.backend.CloseRoom(r.PathValue("room")); err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"closed": r.PathValue("room")})
}

func (a *API) removeParticipant(w http.ResponseWriter, r *http.Request) {
	if err := a.backend.RemoveParticipant(r.PathValue("room"), r.PathValue("id")); err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": r.PathValue("id")})
}

func (a *API) updateParticipant(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Grants *protocol.Grants `json:"grants"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Grants == nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `body must carry "grants"`)
		return
	}
	p, err := a.backend.UpdateGrants(r.PathValue("room"), r.PathValue("id"), *body.Grants)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) muteTrack(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Muted *bool `json:"muted"`
	}{}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Muted == nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `body must carry "muted": true or false`)
		return
	}
	if err := a.backend.MuteTrack(r.PathValue("room"), r.PathValue("track"), *body.Muted); err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"track": r.PathValue("track"), "muted": *body.Muted})
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Identity string          `json:"identity"`
	Name     string          `json:"name"`
	Room     string          `json:"room"`
	Grants   protocol.Grants `json:"grants"`
	TTL      string          `json:"ttl"` // a Go duration; default 6h
}

func (a *API) mintToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if !readJSON(w, r, &req) {
		return
	}
	ttl := 6 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("ttl %q: want a duration between 1s and 720h", req.TTL))
			return
		}
		ttl = d
	}
	if req.Name == "" {
		req.Name = req.Identity
	}
	key, secret := a.signingKey()
	tok, err := auth.Mint(key, secret, auth.Claims{Identity: req.Identity, Name: req.Name, Room: req.Room, Grants: req.Grants}, ttl)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expiresAt": a.now().Add(ttl).UTC().Format(time.RFC3339)})
}

// signingKey picks the key tokens are minted with: the smallest key name,
// so the choice is stable across requests.
func (a *API) signingKey() (string, string) {
	best := ""
	for k := range a.keys {
		if best == "" || k < best {
			best = k
		}
	}
	return best, a.keys[best]
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ErrorBody is every error's JSON: {"error": {"code": ..., "message": ...}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeBackendError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
}
