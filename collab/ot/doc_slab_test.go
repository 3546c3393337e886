package ot

import "testing"

// TestDocInversesDoNotShareSlots: inverses cut from one slab stay
// independent: appending to one (here after Apply trimmed its trailing
// retain) never changes the next.
func TestDocInversesDoNotShareSlots(t *testing.T) {
	d := NewDoc("abcdef")
	inv1, err := d.Apply(Op{}.Insert("x").Normalize())
	if err != nil {
		t.Fatal(err)
	}
	inv2, err := d.Apply(Op{}.Retain(2).Delete(2).Normalize())
	if err != nil {
		t.Fatal(err)
	}
	want := inv2.String()
	_ = append(inv1, Component{Kind: Retain, N: 7}, Component{Kind: Delete, N: 9})
	if inv2.String() != want {
		t.Fatalf("appending to the first inverse changed the second: %s, was %s", inv2, want)
	}
	// An op whose inverse merges components uses fewer slots than it has.
	inv3, err := d.Apply(Op{{Kind: Retain, N: 1}, {Kind: Retain, N: 1}, {Kind: Insert, N: 1, Text: "y"}})
	if err != nil {
		t.Fatal(err)
	}
	inv4, err := d.Apply(Op{}.Delete(1).Normalize())
	if err != nil {
		t.Fatal(err)
	}
	want = inv4.String()
	_ = append(inv3, Component{Kind: Retain, N: 5})
	if inv4.String() != want {
		t.Fatalf("appending to an inverse with spare slots changed the next: %s, was %s", inv4, want)
	}
}
