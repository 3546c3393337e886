package sfu

import "strings"

// isKeyframe reports whether an RTP payload starts a keyframe, for the codecs
// the SFU forwards. A downtrack waits for one before it sends video, so a
// subscriber's decoder never starts on a delta frame.
// It runs on every video packet, so it compares without allocating.
func isKeyframe(mime string, payload []byte) bool {
	switch {
	case strings.EqualFold(mime, "video/vp8"):
		return vp8Keyframe(payload)
	case strings.EqualFold(mime, "video/h264"):
		return h264Keyframe(payload)
	case strings.EqualFold(mime, "video/vp9"):
		return vp9Keyframe(payload)
	}
	return false
}

// vp8Keyframe parses the VP8 payload descriptor (RFC 7741 section 4.2) and
// checks the P bit of the first partition's frame tag.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x := p[0]&0x80 != 0
	s := p[0]&0x10 != 0
	pid := p[0] & 0x07
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 { // 15-bit picture id
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if !s || pid != 0 || len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0 // P bit: 0 means keyframe
}

// h264Keyframe looks for an IDR slice or SPS in a single NAL unit, a STAP-A
// aggregate or the start of an FU-A fragment (RFC 6184).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; nal {
	case 5, 7: // IDR slice, SPS
		return true
	case 24: // STAP-A: 16-bit sizes followed by NAL units
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if i >= len(p) {
				return false
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: keyframe if the first fragment of an IDR
		if len(p) < 2 {
			return false
		}
		start := p[1]&0x80 != 0
		return start && p[1]&0x1f == 5
	}
	return false
}

// vp9Keyframe checks the VP9 payload descriptor (RFC 9628): a keyframe is
// the start of a frame that is not inter-predicted (P bit clear) in the
// lowest spatial layer.
func vp9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	d := p[0]
	interPicture := d&0x40 != 0
	begin := d&0x08 != 0
	if interPicture || !begin {
		return false
	}
	// With layer indices present, only spatial layer 0 starts a keyframe.
	if d&0x20 != 0 {
		i := 1
		if d&0x80 != 0 { // picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if len(p) <= i {
			return false
		}
		return (p[i]>>1)&0x07 == 0
	}
	return true
}
