// Package turn is Huddle's embedded TURN relay, built on pion/turn v4.
//
// The signaling server creates one Server from Config, starts it with
// `huddle serve`, mints per-participant Credentials at join (TURN REST
// scheme: "<expiry>:<user>" and an HMAC-SHA1 password, compatible with
// coturn's use-auth-secret) and hands clients the list from ICEServers.
//
// Beyond pion/turn the package adds a peer-address policy (the relay reaches
// the SFU's media ports and the Internet, never loopback, private, link-local
// or this host's other services), a per-user allocation quota, stream
// connection deadlines, Prometheus metrics and slog logs. With
// Config.ExternalURLs set it runs no relay and only mints credentials for an
// external TURN server. See docs/TURN.md.
package turn
