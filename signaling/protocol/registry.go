package protocol

import "reflect"

// Message families in files of their own (chat, presence, resume...)
// register their types here, so that adding one does not touch the
// switches in protocol.go.
var (
	familyNew  = map[string]func() any{}
	familyType = map[reflect.Type]string{}
)

// register adds a wire type; it runs from package init only.
func register(wire string, fresh func() any) {
	if _, dup := familyNew[wire]; dup {
		panic("protocol: type registered twice: " + wire)
	}
	familyNew[wire] = fresh
	familyType[reflect.TypeOf(fresh())] = wire
}

func registeredTypeOf(m any) (string, bool) {
	t, ok := familyType[reflect.TypeOf(m)]
	return t, ok
}

func registeredNew(wire string) (any, bool) {
	f, ok := familyNew[wire]
	if !ok {
		return nil, false
	}
	return f(), true
}
