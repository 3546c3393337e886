package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/stun/v3"
)

// stunDiscoverTimeout bounds --stun-discover at start: a server that was
// asked to find its public address and cannot must say so, not hang.
const stunDiscoverTimeout = 5 * time.Second

// stunDiscover asks a STUN server (stun:host:port) which address this
// host's packets come from, sending from localHost (the media address's
// host part, so that the route and interface are the media port's). Behind
// a 1:1 NAT that is the public address to advertise.
func stunDiscover(ctx context.Context, rawURL, localHost string) (netip.Addr, error) {
	uri, err := stun.ParseURI(rawURL)
	if err != nil || uri.Scheme != stun.SchemeTypeSTUN {
		return netip.Addr{}, fmt.Errorf("--stun-discover %q: want stun:host[:port]", rawURL)
	}
	server := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(localHost, "0"))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("stun discover: %w", err)
	}
	defer conn.Close()
	raddr, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("stun discover: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, stunDiscoverTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	buf := make([]byte, 1500)
	// Resend every half second (UDP may lose the request or the answer)
	// until an answer to this transaction arrives or the time is up.
	for ctx.Err() == nil {
		if _, err := conn.WriteTo(req.Raw, raddr); err != nil {
			return netip.Addr{}, fmt.Errorf("stun discover: send to %s: %w", server, err)
		}
		next := time.Now().Add(500 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		conn.SetReadDeadline(next)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return netip.Addr{}, fmt.Errorf("stun discover: %w", err)
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue // not our answer
			}
			var xor stun.XORMappedAddress
			if err := xor.GetFrom(res); err != nil {
				return netip.Addr{}, fmt.Errorf("stun discover: answer from %s: %w", server, err)
			}
			addr, ok := netip.AddrFromSlice(xor.IP)
			if !ok {
				return netip.Addr{}, fmt.Errorf("stun discover: answer from %s: bad address %v", server, xor.IP)
			}
			return addr.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("stun discover: no answer from %s within %v (UDP to it blocked?); set --public-ips instead", server, stunDiscoverTimeout)
}

// publicAddresses checks --public-ips and adds what --stun-discover finds.
func publicAddresses(ctx context.Context, publicIPs []string, stunURL, mediaAddr string) ([]string, error) {
	for _, ip := range publicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("--public-ips %q: not an IP address", ip)
		}
	}
	if stunURL == "" {
		return publicIPs, nil
	}
	host, _, err := net.SplitHostPort(mediaAddr)
	if err != nil {
		return nil, fmt.Errorf("--media-udp-addr %q: %w", mediaAddr, err)
	}
	addr, err := stunDiscover(ctx, stunURL, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range publicIPs {
		if ip == addr.String() {
			return publicIPs, nil
		}
	}
	return append(publicIPs, addr.String()), nil
}
