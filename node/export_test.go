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

// SetBeforeLocalJoin sets the hook that runs when a node has routed a join
// to itself, before the join runs; nil removes it.
func SetBeforeLocalJoin(f func(n *Node, room string)) {
	if f == nil {
		localJoinHook.Store(nil)
		return
	}
	localJoinHook.Store(&f)
}
