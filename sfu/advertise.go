package sfu

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// interfaceNet is the host's network reduced to the named interfaces. The
// UDP mux of a socket bound to an unspecified address lists every address
// of every interface for its host candidates, and Pion's interface filter
// (SettingEngine.SetInterfaceFilter) does not reach it: the mux gets this
// instead.
type interfaceNet struct {
	*stdnet.Net
	keep []string
}

func (n interfaceNet) Interfaces() ([]*transport.Interface, error) {
	all, err := n.Net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []*transport.Interface
	for _, i := range all {
		if slices.Contains(n.keep, i.Name) {
			out = append(out, i)
		}
	}
	return out, nil
}

// newUDPMux is the ICE UDP mux over conn, limited to interfaces when any
// are named; a name that is not an interface of this host is an error.
func newUDPMux(log logging.LeveledLogger, conn net.PacketConn, interfaces []string) (*ice.UDPMuxDefault, error) {
	params := ice.UDPMuxParams{Logger: log, UDPConn: conn}
	if len(interfaces) > 0 {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, fmt.Errorf("media interfaces: %w", err)
		}
		all, err := n.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("media interfaces: %w", err)
		}
		var names []string
		for _, i := range all {
			names = append(names, i.Name)
		}
		for _, want := range interfaces {
			if !slices.Contains(names, want) {
				return nil, fmt.Errorf("media interface %q: no such interface (this host has %s)", want, strings.Join(names, ", "))
			}
		}
		params.Net = interfaceNet{Net: n, keep: interfaces}
	}
	return ice.NewUDPMuxDefault(params), nil
}

// Advertised lists the addresses the server puts in its media host
// candidates: the public addresses when configured, otherwise the
// addresses the UDP port is reachable at (every address of the selected
// interfaces when it is bound to an unspecified address).
func (e *Engine) Advertised() []string {
	if len(e.publicIPs) > 0 {
		return slices.Clone(e.publicIPs)
	}
	var out []string
	for _, a := range e.udpMux.GetListenAddresses() {
		ua, ok := a.(*net.UDPAddr)
		if !ok || (ua.IP.IsLoopback() && !e.loopback) || ua.IP.IsLinkLocalUnicast() {
			continue
		}
		if s := ua.IP.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
