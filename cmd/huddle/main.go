// Command huddle is the whole Huddle server in one binary.
//
//	huddle [serve] [flags]        run the server (the default)
//	huddle token [flags]          mint an access token
//	huddle rooms|participants ... manage a running server through its admin API
//	huddle bench sfu [flags]      load a server with SDK bots and report its media costs
//	huddle bench signaling [...]  idle participants' cost: memory, goroutines, join latency, CPU
//	huddle bench ot [flags]       replay an editing trace through the document service
//	huddle bot record|play        record a room's tracks to files, or play files into a room
//	huddle load-test [flags]      ramp rooms of bots until quality drops; participants per core
//	huddle doctor [--url URL]     check that a server is reachable: HTTP, WebSocket, UDP, ICE-TCP, TURN, clock
//
// Every flag of serve can also be set with an environment variable named
// HUDDLE_ and the flag in capitals, dashes as underscores: --http-addr is
// HUDDLE_HTTP_ADDR. Flags win over the environment.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "token":
		err = token(args)
	case "bench":
		err = bench(args)
	case "rooms":
		err = rooms(args, os.Stdout)
	case "participants":
		err = participants(args, os.Stdout)
	case "bot":
		err = bot(args)
	case "load-test":
		err = loadTest(args)
	case "doctor":
		err = doctor(args)
	case "help":
		fmt.Println("usage: huddle [serve|token|rooms|participants|bench|bot|load-test|doctor] [flags]; huddle <command> -h for flags")
	default:
		err = fmt.Errorf("unknown command %q (want serve, token, rooms, participants, bench, bot, load-test or doctor)", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "huddle:", err)
		os.Exit(1)
	}
}
