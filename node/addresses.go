package node

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/huddle-rtc/huddle/sfu"
)

// logAddresses writes the one start-up line an operator needs to check the
// deployment: where HTTP, media and TURN listen, and which media address
// clients are told to use (the usual culprit when calls do not connect).
func (n *Node) logAddresses(media *sfu.Engine) {
	tcp := "off"
	if a := media.TCPAddr(); a != nil {
		tcp = a.String()
	}
	advertised := strings.Join(media.Advertised(), ",")
	source := "interfaces"
	switch {
	case len(n.cfg.PublicIPs) > 0:
		source = "public-ips"
	case advertised == "":
		advertised = "none (no usable interface address: set --public-ips)"
	}
	turnInfo := "off"
	if n.turn != nil {
		if n.turn.External() {
			turnInfo = "external"
		} else {
			a := n.turn.Addrs()
			var parts []string
			for _, x := range []struct {
				name string
				ap   netip.AddrPort
			}{{"udp", a.UDP}, {"tcp", a.TCP}, {"tls", a.TLS}} {
				if x.ap.IsValid() {
					parts = append(parts, fmt.Sprintf("%s %s", x.name, x.ap))
				}
			}
			turnInfo = strings.Join(parts, ", ")
		}
	}
	n.log.Info("huddle is serving", "url", n.URL(), "http", n.listener.Addr().String(),
		"media_udp", media.UDPAddr().String(), "media_tcp", tcp,
		"media_advertised", advertised, "advertised_from", source,
		"turn", turnInfo, "data", n.cfg.DataDir)
}
