package main

import (
	"os"
	"path/filepath"
	"testing"
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
