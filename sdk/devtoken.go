package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// DevToken fetches a token from a server running in dev mode (no API keys
// configured), which mints them for clients on its own machine. Servers
// with keys refuse: mint tokens with `huddle token` or auth.Mint instead.
func DevToken(ctx context.Context, serverURL, name, room string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("dev token: server url %q: %w", serverURL, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/ws"), "/") + "/api/dev/token"
	u.RawQuery = url.Values{"name": {name}, "room": {room}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dev token: %w (is a huddle server running at %s?)", err, serverURL)
	}
	defer resp.Body.Close()
	var body struct{ Token, Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusOK || body.Token == "" {
		return "", fmt.Errorf("dev token from %s: %s %s (only a dev-mode server gives tokens, and only to its own machine; otherwise pass a token minted with `huddle token`)", serverURL, resp.Status, body.Error)
	}
	return body.Token, nil
}
