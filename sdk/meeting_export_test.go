package sdk

// SendRaw sends any signaling message, to try what the SDK would not send.
func (r *Room) SendRaw(m any) error { return r.sendSignal(m) }
