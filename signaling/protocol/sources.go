package protocol

// What a published track carries (Offer.Sources, Track.Source). The server
// refuses an offer naming any other source; the SDK refuses it at the call.
const (
	SourceCamera      = "camera"
	SourceMicrophone  = "microphone"
	SourceScreen      = "screen"
	SourceScreenAudio = "screen_audio"
	SourceUnknown     = "unknown"
)

// Sources lists the valid sources, for messages that name them.
var Sources = []string{SourceCamera, SourceMicrophone, SourceScreen, SourceScreenAudio, SourceUnknown}

// ValidSource reports whether s is one of Sources.
func ValidSource(s string) bool {
	switch s {
	case SourceCamera, SourceMicrophone, SourceScreen, SourceScreenAudio, SourceUnknown:
		return true
	}
	return false
}
