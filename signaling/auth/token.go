// Package auth mints and checks Huddle access tokens: HS256 JWTs signed with
// an API secret and naming their API key in the "kid" header, so a server can
// hold several keys and rotate them.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

// Claims are what a token says about its bearer.
type Claims struct {
	Identity string          `json:"sub"`
	Name     string          `json:"name,omitempty"`
	Room     string          `json:"room"`
	Grants   protocol.Grants `json:"grants"`
	jwt.RegisteredClaims
}

// Keys maps API keys to their secrets.
type Keys map[string]string

// ErrInvalid is wrapped by every refusal, so callers can tell a bad token
// from a server fault.
var ErrInvalid = errors.New("invalid token")

// Mint signs a token for one identity in one room, valid for ttl.
func Mint(apiKey, secret string, c Claims, ttl time.Duration) (string, error) {
	if c.Identity == "" {
		return "", errors.New("mint token: identity is empty")
	}
	if c.Room == "" {
		return "", errors.New("mint token: room is empty")
	}
	if ttl <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	now := time.Now()
	c.Issuer = apiKey
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now.Add(-time.Minute)) // tolerate clock skew
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, &c)
	t.Header["kid"] = apiKey
	s, err := t.SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature, expiry and shape.
func (k Keys) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrInvalid)
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		secret, ok := k[kid]
		if !ok {
			return nil, fmt.Errorf("unknown API key %q", kid)
		}
		return []byte(secret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, reason(err))
	}
	if c.Identity == "" || c.Room == "" {
		return nil, fmt.Errorf("%w: token names no identity or no room", ErrInvalid)
	}
	return &c, nil
}

// reason says why a token was refused in words a user can act on, without
// the JSON parser's internals.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token is not valid yet (check the clocks)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "token signature is invalid (wrong API secret?)"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token names an unknown API key"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no expiry"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "token is malformed"
	}
	return "token is not valid"
}

// NewKeyPair makes a random API key and secret, for dev mode and `huddle token`.
func NewKeyPair() (key, secret string) {
	return "API" + randomHex(6), randomHex(32)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return hex.EncodeToString(b)
}
