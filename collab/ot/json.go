package ot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Wire form (the same shape as ShareDB's text type):
//
//	[5, "abc", {"d": 3}, 2, {"i": "xy", "a": 4, "g": 1, "s": 17}]
//
// a JSON array whose elements are, in order: a positive integer = retain
// that many code points, a non-empty string = insert it, an object {"d": n}
// with a positive integer n = delete n code points, an object {"i": s,
// "a": after, "g": gone, "s": seen, "h": held} = insert s with its
// tie-break context (Component.After, Gone and Seen, non-negative integers
// up to MaxContext, MaxContext and MaxSeen, and Held, 0 or 1; each
// optional and omitted when 0). An insert without context is always sent as a plain
// string, so ops as typed keep the ShareDB shape. The identity op is [].
// Anything else (zero or negative counts, fractions, empty strings, other
// keys, null) is rejected with ErrInvalidOp. Adjacent parts of one kind and
// a trailing retain are accepted and normalised away.

// MarshalJSON encodes o in the wire form. It fails on an op that does not
// pass Validate, so that an invalid op never reaches the wire.
func (o Op) MarshalJSON() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o.AppendJSON(nil), nil
}

// AppendJSON appends o's wire form to b without validating it (the store
// encodes ops the service has already validated, one per keystroke).
func (o Op) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, c := range o {
		if i > 0 {
			b = append(b, ',')
		}
		switch c.Kind {
		case Retain:
			b = strconv.AppendInt(b, int64(c.N), 10)
		case Insert:
			if !c.hasContext() {
				b = AppendJSONString(b, c.Text)
				break
			}
			b = append(b, `{"i":`...)
			b = AppendJSONString(b, c.Text)
			if c.After != 0 {
				b = append(b, `,"a":`...)
				b = strconv.AppendInt(b, int64(c.After), 10)
			}
			if c.Gone != 0 {
				b = append(b, `,"g":`...)
				b = strconv.AppendInt(b, int64(c.Gone), 10)
			}
			if c.Seen != 0 {
				b = append(b, `,"s":`...)
				b = strconv.AppendInt(b, c.Seen, 10)
			}
			if c.Held {
				b = append(b, `,"h":1`...)
			}
			b = append(b, '}')
		case Delete:
			b = append(b, `{"d":`...)
			b = strconv.AppendInt(b, int64(c.N), 10)
			b = append(b, '}')
		}
	}
	return append(b, ']')
}

// AppendJSONString appends s as a JSON string that decodes to s (invalid
// UTF-8 becomes U+FFFD, as encoding/json does).
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\t':
				b = append(b, '\\', 't')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// UnmarshalJSON decodes the wire form into a normalised op. Every failure
// wraps ErrInvalidOp.
func (o *Op) UnmarshalJSON(data []byte) error {
	op, err := Parse(data)
	if err != nil {
		return err
	}
	*o = op
	return nil
}

// Parse decodes an op from its wire form and normalises it.
func Parse(data []byte) (Op, error) {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil, fmt.Errorf("%w: null is not an op (use [] for no change)", ErrInvalidOp)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return nil, fmt.Errorf("%w: not a JSON array: %v", ErrInvalidOp, err)
	}
	var out Op
	for i, p := range parts {
		c, err := parseComponent(p)
		if err != nil {
			return nil, fmt.Errorf("%w: component %d: %v", ErrInvalidOp, i, err)
		}
		out = out.push(c)
	}
	return out.trim(), nil
}

func parseComponent(p json.RawMessage) (Component, error) {
	if len(p) == 0 {
		return Component{}, fmt.Errorf("empty component")
	}
	switch p[0] {
	case '"':
		return parseInsert(p)
	case '{':
		var d map[string]json.RawMessage
		if err := json.Unmarshal(p, &d); err != nil {
			return Component{}, err
		}
		if _, ok := d["i"]; ok {
			return parseInsertContext(d, p)
		}
		raw, ok := d["d"]
		if !ok || len(d) != 1 {
			return Component{}, fmt.Errorf(`object must be exactly {"d": n}, got %s`, p)
		}
		n, err := parseCount(raw)
		if err != nil {
			return Component{}, fmt.Errorf("delete: %v", err)
		}
		return Component{Kind: Delete, N: n}, nil
	default:
		n, err := parseCount(p)
		if err != nil {
			return Component{}, fmt.Errorf("retain: %v", err)
		}
		return Component{Kind: Retain, N: n}, nil
	}
}

// parseInsert decodes an insert's JSON string.
func parseInsert(p json.RawMessage) (Component, error) {
	// encoding/json silently turns invalid UTF-8 and lone surrogate
	// escapes into U+FFFD; refuse those bytes before it can.
	if len(p) == 0 || p[0] != '"' {
		return Component{}, fmt.Errorf("insert must be a string, got %s", p)
	}
	if !utf8.Valid(p) {
		return Component{}, fmt.Errorf("insert is not valid UTF-8")
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil {
		return Component{}, err
	}
	if s == "" {
		return Component{}, fmt.Errorf("empty insert")
	}
	if bytes.Contains(p, []byte(`\ud`)) || bytes.Contains(p, []byte(`\uD`)) {
		if err := checkSurrogates(p); err != nil {
			return Component{}, err
		}
	}
	return Component{Kind: Insert, N: utf8.RuneCountInString(s), Text: s}, nil
}

// parseInsertContext decodes {"i": s, "a": after, "g": gone, "s": seen, "h": held}.
func parseInsertContext(d map[string]json.RawMessage, p json.RawMessage) (Component, error) {
	c, err := parseInsert(d["i"])
	if err != nil {
		return Component{}, err
	}
	for k, raw := range d {
		limit := int64(MaxContext)
		switch k {
		case "i":
			continue
		case "a", "g":
		case "s":
			limit = MaxSeen
		case "h":
			limit = 1
		default:
			return Component{}, fmt.Errorf(`insert object has unknown key %q in %s`, k, p)
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil || n < 0 || n > limit {
			return Component{}, fmt.Errorf("insert context %q: %s is not an integer from 0 to %d", k, raw, limit)
		}
		switch k {
		case "a":
			c.After = int32(n)
		case "g":
			c.Gone = int32(n)
		case "s":
			c.Seen = n
		case "h":
			c.Held = n == 1
		}
	}
	return c, nil
}

// parseCount accepts only a positive JSON integer that fits an int.
func parseCount(p json.RawMessage) (int, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(p)), 10, 0)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer count", p)
	}
	if n <= 0 {
		return 0, fmt.Errorf("count %d must be positive", n)
	}
	return int(n), nil
}

// checkSurrogates rejects a JSON string with a \uD800-\uDFFF escape that is
// not part of a valid surrogate pair (it would decode to U+FFFD).
func checkSurrogates(p []byte) error {
	for i := 0; i+5 < len(p); i++ {
		if p[i] != '\\' {
			continue
		}
		if p[i+1] != 'u' {
			i++ // skip the escaped character, e.g. \\ or \"
			continue
		}
		v, err := strconv.ParseUint(string(p[i+2:i+6]), 16, 16)
		if err != nil {
			return fmt.Errorf("bad escape")
		}
		switch {
		case v >= 0xD800 && v < 0xDC00:
			if i+11 >= len(p) || p[i+6] != '\\' || p[i+7] != 'u' {
				return fmt.Errorf("insert has a lone surrogate escape")
			}
			w, err := strconv.ParseUint(string(p[i+8:i+12]), 16, 16)
			if err != nil || w < 0xDC00 || w > 0xDFFF {
				return fmt.Errorf("insert has a lone surrogate escape")
			}
			i += 11
		case v >= 0xDC00 && v <= 0xDFFF:
			return fmt.Errorf("insert has a lone surrogate escape")
		default:
			i += 5
		}
	}
	return nil
}
