package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A config file sets flags; the environment overrides the file and the
// command line overrides both; unknown settings are refused.
func TestConfigFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "huddle.json")
	if err := os.WriteFile(path, []byte(`{"http-addr": "127.0.0.1:1", "data-dir": "/from-file", "log-level": "debug", "public-ips": ["203.0.113.1", "203.0.113.2"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HUDDLE_DATA_DIR", "/from-env")
	f := newEnvFlags("serve")
	httpAddr := f.String("http-addr", ":7880", "")
	dataDir := f.String("data-dir", "./huddle-data", "")
	level := f.String("log-level", "info", "")
	ips := f.String("public-ips", "", "")
	if err := f.parse([]string{"--config", path, "--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if *httpAddr != "127.0.0.1:1" || *dataDir != "/from-env" || *level != "warn" || *ips != "203.0.113.1,203.0.113.2" {
		t.Errorf("got http=%q data=%q level=%q ips=%q", *httpAddr, *dataDir, *level, *ips)
	}

	if err := os.WriteFile(path, []byte(`{"no-such-flag": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := newEnvFlags("serve")
	g.String("http-addr", "", "")
	if err := g.parse([]string{"--config=" + path}); err == nil {
		t.Error("unknown setting accepted")
	}
	if err := newEnvFlags("serve").parse([]string{"--config", filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("missing config file accepted")
	}
}

// The protocol's settings keep their flag, file and environment names and
// land in node.Config.Signaling: a file and the environment set them, and
// none set gives the defaults serve always had.
func TestServeConfigSignalingSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huddle.json")
	if err := os.WriteFile(path, []byte(`{"max-participants": 7, "resume-grace": "45s", "allowed-origins": ["https://a.example", "https://b.example"], "joins-per-second": 9, "turn": "off"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HUDDLE_CONFIG", "")
	t.Setenv("HUDDLE_JOINS_PER_SECOND", "3") // the environment wins over the file
	cfg, err := serveConfig([]string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.Signaling
	if sc.MaxParticipants != 7 || sc.ResumeGrace != 45*time.Second || sc.JoinRate != 3 || sc.JoinBurst != 15 ||
		!slices.Equal(sc.AllowedOrigins, []string{"https://a.example", "https://b.example"}) {
		t.Errorf("from file and env: %+v", sc)
	}
	if cfg.TURN != nil {
		t.Error(`"turn": "off" in the file still runs a relay`)
	}

	t.Setenv("HUDDLE_JOINS_PER_SECOND", "-1")
	cfg, err = serveConfig([]string{"--max-participants", "12", "--allowed-origins", "https://c.example"})
	if err != nil {
		t.Fatal(err)
	}
	sc = cfg.Signaling
	if sc.MaxParticipants != 12 || sc.ResumeGrace != 30*time.Second || sc.JoinRate != -1 || sc.JoinBurst != 5 ||
		!slices.Equal(sc.AllowedOrigins, []string{"https://c.example"}) {
		t.Errorf("from flags, env and defaults: %+v", sc)
	}
}
