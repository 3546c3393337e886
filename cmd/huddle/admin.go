package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/huddle-rtc/huddle/admin"
	"github.com/huddle-rtc/huddle/signaling/protocol"
	"github.com/huddle-rtc/huddle/webhook"
)

// adminFlags are the flags every admin command shares: where the server is
// and the API key that signs the requests (or a roomAdmin token).
type adminFlags struct {
	envFlags
	url, key, secret, token *string
	jsonOut                 *bool
}

func newAdminFlags(name string) adminFlags {
	f := adminFlags{envFlags: newEnvFlags(name)}
	f.url = f.String("url", "http://localhost:7880", "the server's HTTP address")
	f.key = f.String("api-key", "", "API key that signs the request")
	f.secret = f.String("api-secret", "", "its secret")
	f.token = f.String("admin-token", "", "a token with the roomAdmin grant, instead of the key")
	f.jsonOut = f.Bool("json", false, "print the server's JSON")
	return f
}

// parseAll reads flags wherever they are among the positional arguments
// (`huddle rooms show ROOM --url X` as well as `--url X show ROOM`).
func (f adminFlags) parseAll(args []string) ([]string, error) {
	var pos []string
	if err := f.parse(args); err != nil { // once: it also reads --config
		return nil, err
	}
	for rest := f.Args(); len(rest) > 0; rest = f.Args() {
		pos = append(pos, rest[0])
		if err := f.FlagSet.Parse(rest[1:]); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

func (f adminFlags) client() (*admin.Client, error) {
	if *f.token == "" && (*f.key == "" || *f.secret == "") {
		return nil, errors.New("--api-key and --api-secret (or --admin-token) are required (dev mode prints the key in the server log)")
	}
	return &admin.Client{URL: *f.url, APIKey: *f.key, APISecret: *f.secret, Token: *f.token}, nil
}

const roomsUsage = "usage: huddle rooms list | show ROOM | close ROOM [--url URL --api-key K --api-secret S]"

// rooms is `huddle rooms ...`.
func rooms(args []string, out io.Writer) error {
	f := newAdminFlags("rooms")
	pos, err := f.parseAll(args)
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch {
	case len(pos) == 1 && pos[0] == "list":
		rs, err := c.ListRooms(ctx)
		if err != nil || *f.jsonOut {
			return printJSON(out, rs, err)
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ROOM\tPARTICIPANTS")
		for _, r := range rs {
			fmt.Fprintf(w, "%s\t%d\n", r.Name, r.NumParticipants)
		}
		return w.Flush()
	case len(pos) == 2 && pos[0] == "show":
		r, err := c.GetRoom(ctx, pos[1])
		if err != nil || *f.jsonOut {
			return printJSON(out, r, err)
		}
		return printParticipants(out, r)
	case len(pos) == 2 && pos[0] == "close":
		if err := c.CloseRoom(ctx, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(out, "closed room %s\n", pos[1])
		return nil
	}
	return errors.New(roomsUsage)
}

const participantsUsage = "usage: huddle participants list ROOM | remove ROOM ID | mute ROOM TRACK [--unmute] | grants ROOM ID --grants a,b [--url URL --api-key K --api-secret S]"

// participants is `huddle participants ...`.
func participants(args []string, out io.Writer) error {
	f := newAdminFlags("participants")
	unmute := f.Bool("unmute", false, "mute: resume the track instead")
	grants := f.String("grants", "", "grants: comma-separated publish, subscribe, publishData, editDocs, roomAdmin (empty: none)")
	pos, err := f.parseAll(args)
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return fmt.Errorf("participants: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch {
	case len(pos) == 2 && pos[0] == "list":
		r, err := c.GetRoom(ctx, pos[1])
		if err != nil || *f.jsonOut {
			return printJSON(out, r.Participants, err)
		}
		return printParticipants(out, r)
	case len(pos) == 3 && pos[0] == "remove":
		if err := c.RemoveParticipant(ctx, pos[1], pos[2]); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed %s from %s; its token is refused from now on\n", pos[2], pos[1])
		return nil
	case len(pos) == 3 && pos[0] == "mute":
		if err := c.MuteTrack(ctx, pos[1], pos[2], !*unmute); err != nil {
			return err
		}
		fmt.Fprintf(out, "track %s muted: %v\n", pos[2], !*unmute)
		return nil
	case len(pos) == 3 && pos[0] == "grants":
		g, err := parseGrants(*grants)
		if err != nil {
			return fmt.Errorf("participants: %w", err)
		}
		p, err := c.UpdateGrants(ctx, pos[1], pos[2], g)
		return printJSON(out, p, err)
	}
	return errors.New(participantsUsage)
}

func printParticipants(out io.Writer, r admin.Room) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tIDENTITY\tPRESENCE\tQUALITY\tTRACKS")
	for _, p := range r.Participants {
		q := "-"
		if p.Quality != nil {
			q = fmt.Sprintf("%s (loss %.1f%%, rtt %.0f ms)", p.Quality.Level, p.Quality.LossPercent, p.Quality.RTTMs)
		}
		var ts []string
		for _, t := range p.Tracks {
			m := ""
			if t.Muted {
				m = ",muted"
			}
			ts = append(ts, fmt.Sprintf("%s(%s %s%s)", t.ID, t.Kind, t.Codec, m))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Identity, p.Presence, q, strings.Join(ts, " "))
	}
	return w.Flush()
}

func printJSON(out io.Writer, v any, err error) error {
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseGrants reads the comma-separated grant names of --grants.
func parseGrants(s string) (protocol.Grants, error) {
	var g protocol.Grants
	for _, v := range list(s) {
		switch v {
		case "publish":
			g.Publish = true
		case "subscribe":
			g.Subscribe = true
		case "publishData":
			g.PublishData = true
		case "editDocs":
			g.EditDocs = true
		case "roomAdmin":
			g.RoomAdmin = true
		default:
			return g, fmt.Errorf("unknown grant %q", v)
		}
	}
	return g, nil
}

// webhookConfig is serve's --webhook-urls: nil when empty.
func webhookConfig(urls string) *webhook.Config {
	if urls == "" {
		return nil
	}
	return &webhook.Config{URLs: list(urls)}
}
