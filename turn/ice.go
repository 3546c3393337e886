package turn

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ICEServer is one entry of an RTCConfiguration's iceServers, kept free of
// any WebRTC dependency. It converts field for field to webrtc.ICEServer
// (with the default password credential type) and to the browser's
// RTCIceServer JSON ({"urls", "username", "credential"}).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceURLs lists the TURN URLs for the listeners in addrs, reached at host.
// Every URL names its transport explicitly so that clients do not try UDP
// against a TCP-only port or the reverse.
func iceURLs(host string, addrs Addrs) []string {
	var urls []string
	if addrs.UDP.IsValid() {
		urls = append(urls, "turn:"+hostPort(host, addrs.UDP.Port())+"?transport=udp")
	}
	if addrs.TCP.IsValid() {
		urls = append(urls, "turn:"+hostPort(host, addrs.TCP.Port())+"?transport=tcp")
	}
	if addrs.TLS.IsValid() {
		urls = append(urls, "turns:"+hostPort(host, addrs.TLS.Port())+"?transport=tcp")
	}
	return urls
}

// hostPort joins host and port, bracketing IPv6 literals as URLs need.
func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// hostOnly strips a port (and IPv6 brackets) from a Host header style
// value: "example.com:7880" -> "example.com", "[::1]:7880" -> "::1".
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// usableHost reports whether host can be put into a TURN URL for a client:
// an unspecified address ("0.0.0.0", "::") cannot.
func usableHost(host string) bool {
	if host == "" {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return false
	}
	return true
}
