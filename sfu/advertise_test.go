package sfu

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// The addresses the engine says it advertises: the public ones when set,
// the bound loopback address in tests; an interface name this host does
// not have is refused at start with the names it does have.
func TestEngineAdvertised(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0", PublicIPs: []string{"203.0.113.9"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Advertised(); !slices.Equal(got, []string{"203.0.113.9"}) {
		t.Errorf("with PublicIPs: advertised %v, want [203.0.113.9]", got)
	}

	lo, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	if got := lo.Advertised(); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("bound to loopback: advertised %v, want [127.0.0.1]", got)
	}

	_, err = NewEngine(Config{UDPAddr: "127.0.0.1:0", Interfaces: []string{"no-such-if0"}})
	if err == nil || !strings.Contains(err.Error(), `"no-such-if0"`) || !strings.Contains(err.Error(), "lo") {
		t.Errorf("unknown interface: err %v, want one naming it and this host's interfaces", err)
	}
}

// With interfaces named, a socket on the unspecified address offers only
// those interfaces' addresses (Pion's UDP mux would otherwise list them
// all). Loopback is never offered from an unspecified bind.
func TestEngineInterfacesNarrowUDPMux(t *testing.T) {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var want []string
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		want = nil
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLinkLocalUnicast() {
				want = append(want, ip.IP.String())
			}
		}
		if slices.ContainsFunc(want, func(a string) bool { return net.ParseIP(a).To4() != nil }) {
			name = i.Name
			break
		}
	}
	if name == "" {
		want = nil
		t.Skip("this host has no non-loopback interface with an IPv4 address")
	}
	e, err := NewEngine(Config{UDPAddr: "0.0.0.0:0", Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Advertised(); len(got) != 0 {
		t.Errorf("interfaces [lo] on 0.0.0.0: advertised %v, want nothing", got)
	}
	// ":0" is dual-stack: both families of the interface are offered.
	e2, err := NewEngine(Config{UDPAddr: ":0", Interfaces: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if got := e2.Advertised(); !slices.Equal(got, want) {
		t.Errorf("interfaces [%s] on 0.0.0.0: advertised %v, want %v", name, got, want)
	}
}
