package sfu

// What a subscriber negotiated, matched against what a publisher sends:
// the codec (payload type, H.264 profile) and the header extension ids.

import (
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// matchCodec finds the subscriber's payload type for the publisher's codec.
// For H.264 the profile and packetization mode must match too, or the
// subscriber could not decode what it gets.
func matchCodec(want webrtc.RTPCodecCapability, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var fallback *webrtc.RTPCodecParameters
	for i, c := range have {
		if !strings.EqualFold(c.MimeType, want.MimeType) || c.ClockRate != want.ClockRate {
			continue
		}
		if !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) {
			return c, true
		}
		if h264Profile(c.SDPFmtpLine) == h264Profile(want.SDPFmtpLine) &&
			fmtpValue(c.SDPFmtpLine, "packetization-mode") == fmtpValue(want.SDPFmtpLine, "packetization-mode") {
			return c, true
		}
		if fallback == nil {
			fallback = &have[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// h264Profile is the profile part of profile-level-id (profile_idc and
// constraint flags); the level may differ, decoders handle lower levels.
func h264Profile(fmtp string) string {
	id := fmtpValue(fmtp, "profile-level-id")
	return id[:min(4, len(id))]
}

func fmtpValue(line, key string) string {
	for _, kv := range strings.Split(line, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if ok && strings.EqualFold(k, key) {
			return strings.ToLower(v)
		}
	}
	return ""
}

// extIDs are the header extension ids one side negotiated (0: none).
type extIDs struct {
	audioLevel, absSendTime, twcc uint8
}

func extIDsOf(exts []webrtc.RTPHeaderExtensionParameter) extIDs {
	var e extIDs
	for _, x := range exts {
		if x.ID <= 0 || x.ID > 14 {
			continue // only one-byte ids are written
		}
		switch x.URI {
		case sdp.AudioLevelURI:
			e.audioLevel = uint8(x.ID)
		case sdp.ABSSendTimeURI:
			e.absSendTime = uint8(x.ID)
		case sdp.TransportCCURI:
			e.twcc = uint8(x.ID)
		}
	}
	return e
}
