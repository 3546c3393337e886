package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Client calls a server's admin API, signing each request with an API key
// (or sending a bearer token when Token is set). `huddle rooms` and
// `huddle participants` use it.
type Client struct {
	URL        string // the server, e.g. http://localhost:7880
	APIKey     string
	APISecret  string
	Token      string // instead of the key: a roomAdmin token
	HTTPClient *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%d %s): %s", e.Code, e.Status, http.StatusText(e.Status), e.Message)
}

// Do sends one request and decodes the JSON answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin %s %s: %w", method, path, err)
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	} else {
		req.Header.Set("Authorization", Sign(c.APIKey, c.APISecret, method, req.URL.RequestURI(), body, time.Now()))
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(data))}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin %s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// ListRooms lists the server's rooms.
func (c *Client) ListRooms(ctx context.Context) ([]Room, error) {
	var out struct{ Rooms []Room }
	err := c.Do(ctx, "GET", "/api/v1/rooms", nil, &out)
	return out.Rooms, err
}

// GetRoom describes one room with its participants.
func (c *Client) GetRoom(ctx context.Context, room string) (Room, error) {
	var out Room
	err := c.Do(ctx, "GET", "/api/v1/rooms/"+url.PathEscape(room), nil, &out)
	return out, err
}

// CloseRoom ends every session of a room.
func (c *Client) CloseRoom(ctx context.Context, room string) error {
	return c.Do(ctx, "DELETE", "/api/v1/rooms/"+url.PathEscape(room), nil, nil)
}

// RemoveParticipant removes a participant (by id or identity).
func (c *Client) RemoveParticipant(ctx context.Context, room, id string) error {
	return c.Do(ctx, "DELETE", "/api/v1/rooms/"+url.PathEscape(room)+"/participants/"+url.PathEscape(id), nil, nil)
}

// UpdateGrants replaces a participant's grants.
func (c *Client) UpdateGrants(ctx context.Context, room, id string, g protocol.Grants) (Participant, error) {
	var out Participant
	err := c.Do(ctx, "PATCH", "/api/v1/rooms/"+url.PathEscape(room)+"/participants/"+url.PathEscape(id), map[string]any{"grants": g}, &out)
	return out, err
}

// MuteTrack stops or resumes forwarding a track.
func (c *Client) MuteTrack(ctx context.Context, room, track string, muted bool) error {
	return c.Do(ctx, "POST", "/api/v1/rooms/"+url.PathEscape(room)+"/tracks/"+url.PathEscape(track)+"/mute", map[string]bool{"muted": muted}, nil)
}

// MintToken asks the server for a token.
func (c *Client) MintToken(ctx context.Context, req TokenRequest) (string, error) {
	var out struct{ Token string }
	err := c.Do(ctx, "POST", "/api/v1/tokens", req, &out)
	return out.Token, err
}
