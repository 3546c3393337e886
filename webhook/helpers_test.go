package webhook_test

import (
	"bytes"

	"github.com/huddle-rtc/huddle/signaling/protocol"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func allGrants() protocol.Grants { return protocol.AllGrants() }
