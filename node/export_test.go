package node

// SetBeforeAccept sets the hook that runs as a relay link arrives at a
// node, before it checks that it owns the link's room; nil removes it.
func SetBeforeAccept(f func(n *Node, room string)) {
	if f == nil {
		beforeAccept.Store(nil)
		return
	}
	beforeAccept.Store(&f)
}
