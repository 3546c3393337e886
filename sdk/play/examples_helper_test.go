package play_test

import (
	"os"
	"testing"

	"github.com/huddle-rtc/huddle/sdk/sdktest"
)

// The godoc examples join a real server: serverURL is where it runs
// (http://localhost:7880 for `huddle serve`) and tokenFor mints a token as
// `huddle token` would. The test binary starts one on loopback the first
// time an example asks.
var example sdktest.Lazy

func serverURL() string                     { return example.URL() }
func tokenFor(identity, room string) string { return example.Token(identity, room) }

func TestMain(m *testing.M) {
	code := m.Run()
	example.Close()
	os.Exit(code)
}
