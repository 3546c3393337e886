package turn

import (
	"crypto/hmac"
	"crypto/md5"  //nolint:gosec // RFC 5389 long-term credentials are defined with MD5.
	"crypto/sha1" //nolint:gosec // The TURN REST scheme is defined with HMAC-SHA1.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credentials are ephemeral TURN credentials in the TURN REST API scheme
// (draft-uberti-behave-turn-rest, coturn's use-auth-secret): the username
// carries its own expiry, and the password is derived from it with the
// shared secret, so the relay needs no per-user state to check them.
type Credentials struct {
	// Username is "<expiry unix seconds>:<user>".
	Username string
	// Password is base64(HMAC-SHA1(secret, Username)).
	Password string
	// Expires is when the relay starts refusing this username.
	Expires time.Time
	// TTL is the lifetime the credentials were minted with.
	TTL time.Duration
}

// MintCredentials makes credentials for user valid until now+ttl. It is the
// function behind Server.Credentials, exported for tools (e.g. `huddle
// token`) that mint credentials for an external TURN server.
func MintCredentials(secret []byte, user string, ttl time.Duration, now time.Time) Credentials {
	expires := now.Add(ttl).Truncate(time.Second)
	username := strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return Credentials{
		Username: username,
		Password: restPassword(secret, username),
		Expires:  expires,
		TTL:      ttl,
	}
}

// restPassword is the TURN REST password for username.
func restPassword(secret []byte, username string) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write([]byte(username)) // hash.Hash.Write never fails
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// longTermKey is the RFC 5389 long-term credential key MD5(user:realm:pass)
// that pion/turn checks MESSAGE-INTEGRITY with.
func longTermKey(username, realm, password string) []byte {
	sum := md5.Sum([]byte(username + ":" + realm + ":" + password)) //nolint:gosec
	return sum[:]
}

// Reasons a TURN username is refused, used as metric labels and in logs.
const (
	authMissing     = "missing"      // no username at all
	authMalformed   = "malformed"    // not "<expiry>:<user>"
	authExpired     = "expired"      // expiry in the past
	authWrongRealm  = "wrong_realm"  // realm other than ours
	authBadPassword = "bad_password" // MESSAGE-INTEGRITY did not verify
)

// errAuth is wrapped by every error of ParseUsername.
var errAuth = errors.New("turn: credentials refused")

// ParseUsername splits a TURN REST username into its expiry and user, and
// refuses it when it is malformed or expired at now.
func ParseUsername(username string, now time.Time) (user string, expires time.Time, err error) {
	user, expires, reason := parseUsername(username, now)
	if reason != "" {
		return "", time.Time{}, fmt.Errorf("%w: %s username %q", errAuth, reason, username)
	}
	return user, expires, nil
}

func parseUsername(username string, now time.Time) (user string, expires time.Time, reason string) {
	if username == "" {
		return "", time.Time{}, authMissing
	}
	ts, user, ok := strings.Cut(username, ":")
	if !ok {
		return "", time.Time{}, authMalformed
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || unix <= 0 {
		return "", time.Time{}, authMalformed
	}
	expires = time.Unix(unix, 0)
	if !now.Before(expires) {
		return user, expires, authExpired
	}
	return user, expires, ""
}

// quotaUser is the identity a username's allocations are counted against:
// the user part, so that fresh credentials minted at each join share one
// quota.
func quotaUser(username string) string {
	if _, user, ok := strings.Cut(username, ":"); ok {
		return user
	}
	return username
}
