package whip

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// sdpFrag is what a trickle PATCH body (application/trickle-ice-sdpfrag,
// RFC 8840) says: ICE credentials and candidates, per media section.
type sdpFrag struct {
	ufrag, pwd string
	candidates []webrtc.ICECandidateInit
}

// maxCandidates bounds the candidates one PATCH may carry, and
// maxSessionCandidates those of a whole session: each one costs the ICE
// agent connectivity checks.
const (
	maxCandidates        = 64
	maxSessionCandidates = 256
)

func parseSDPFrag(body string) (sdpFrag, error) {
	var f sdpFrag
	var mid *string
	index := uint16(0)
	sections := -1
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "m="):
			sections++
			index = uint16(max(0, sections))
			mid = nil
		case strings.HasPrefix(line, "a=mid:"):
			m := strings.TrimPrefix(line, "a=mid:")
			mid = &m
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			if len(f.candidates) == maxCandidates {
				return f, fmt.Errorf("more than %d candidates in one request", maxCandidates)
			}
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMLineIndex: &index}
			if mid != nil {
				c.SDPMid = mid
			}
			if f.ufrag != "" {
				u := f.ufrag
				c.UsernameFragment = &u
			}
			f.candidates = append(f.candidates, c)
		}
	}
	if err := sc.Err(); err != nil {
		return f, err
	}
	return f, nil
}
