package clustertest

import (
	"strconv"
	"strings"
	"time"
)

// Record is one line of slog's text format (time=... level=... msg=...
// key=value ...), the format `huddle serve` logs in.
type Record struct {
	Node  string // the node that logged it
	Time  time.Time
	Level string
	Msg   string
	Attrs map[string]string
}

// Attr returns an attribute's value ("" if absent).
func (r Record) Attr(k string) string { return r.Attrs[k] }

// Int returns an attribute as an integer (0 if absent or not a number).
func (r Record) Int(k string) int64 {
	v, _ := strconv.ParseInt(r.Attrs[k], 10, 64)
	return v
}

// ParseRecord parses one slog text line; ok is false for anything else
// (the start-up banner, harness marks).
func ParseRecord(line string) (r Record, ok bool) {
	r.Attrs = map[string]string{}
	s := line
	for s != "" {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			break
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return r, false
			}
			val, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		switch key {
		case "time":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return r, false
			}
			r.Time = t
		case "level":
			r.Level = val
		case "msg":
			r.Msg = val
		default:
			r.Attrs[key] = val
		}
	}
	return r, !r.Time.IsZero() && r.Msg != ""
}
