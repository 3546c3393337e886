package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// natSTUN answers STUN binding requests on loopback as a STUN server on
// the Internet would for a host behind a 1:1 NAT: with the request's
// source port and the NAT's public address, here a TEST-NET one.
func natSTUN(t *testing.T, public net.IP) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			res := stun.MustBuild(req, stun.BindingSuccess,
				&stun.XORMappedAddress{IP: public, Port: from.(*net.UDPAddr).Port}, stun.Fingerprint)
			conn.WriteTo(res.Raw, from)
		}
	}()
	return "stun:" + conn.LocalAddr().String()
}

// `huddle serve --stun-discover` advertises the address the STUN server
// reports: the start-up line says so, and a bot is offered exactly that
// address (doctor names it when, as here, nothing answers there).
func TestServeSTUNDiscover(t *testing.T) {
	stunURL := natSTUN(t, net.ParseIP("192.0.2.77"))
	bin := buildHuddle(t)
	cmd := exec.Command(bin, "serve", "--stun-discover", stunURL)
	cmd.Env = append(os.Environ(),
		"HUDDLE_HTTP_ADDR=127.0.0.1:0",
		"HUDDLE_MEDIA_UDP_ADDR=127.0.0.1:0",
		"HUDDLE_MEDIA_TCP_ADDR=127.0.0.1:0",
		"HUDDLE_DATA_DIR="+t.TempDir(),
		"HUDDLE_TURN=off",
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `msg="huddle is serving"`) {
				serving <- sc.Text()
			}
		}
		close(serving)
	}()
	var line string
	select {
	case line = <-serving:
	case <-time.After(60 * time.Second):
		t.Fatal("huddle serve logged no start-up line within 60 s")
	}
	t.Logf("start-up line: %s", line)
	for _, want := range []string{"media_advertised=192.0.2.77", "advertised_from=public-ips", "media_udp=127.0.0.1:", "media_tcp=127.0.0.1:", "turn=off", "http=127.0.0.1:"} {
		if !strings.Contains(line, want) {
			t.Errorf("start-up line lacks %q", want)
		}
	}
	url := "http://" + parseKV(line)["http"]
	results, out := runDoctor(t, url, 3*time.Second)
	t.Logf("\n%s", out)
	if r := results["media-udp"]; r.OK || !strings.Contains(r.Detail, "192.0.2.77:") {
		t.Errorf("media-udp: %+v, want a failure naming the discovered 192.0.2.77", r)
	}
}

// A STUN server that never answers fails the start with a bounded wait
// and points at --public-ips.
func TestSTUNDiscoverNoAnswer(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = stunDiscover(ctx, "stun:"+silent.LocalAddr().String(), "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "--public-ips") {
		t.Errorf("stun discover against a silent server: %v, want an error pointing at --public-ips", err)
	}
	if _, err := publicAddresses(ctx, []string{"not-an-ip"}, "", ":7882"); err == nil {
		t.Error("--public-ips not-an-ip was accepted")
	}
	if _, err := stunDiscover(ctx, "http://example.com", "127.0.0.1"); err == nil {
		t.Error("--stun-discover with an http URL was accepted")
	}
}
