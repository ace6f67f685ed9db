package rating

import "testing"

// A reload that read an older version of a tariff before it was removed
// does not put it back; a newer one does.
func TestBookRemoveKeepsStaleReloadsOut(t *testing.T) {
	b := NewBook()
	put := func(v int64) {
		tr, err := Compile("t1", "USD", v, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Put(tr)
	}
	put(2)
	put(1) // older than what the book holds: ignored
	if got := b.Get("t1").Version; got != 2 {
		t.Fatalf("version %d, want 2", got)
	}
	b.Remove("t1")
	put(1) // a reload that started before the removal
	if b.Get("t1") != nil {
		t.Fatal("a stale reload brought a removed tariff back")
	}
	put(2) // loaded again on use: the current version
	if got := b.Get("t1"); got == nil || got.Version != 2 {
		t.Fatalf("reloaded %v, want version 2", got)
	}
	b.Remove("t1")
	b.Remove("t1") // removing what is not there is a no-op
	put(3)
	if got := b.Get("t1"); got == nil || got.Version != 3 {
		t.Fatalf("after removal, a newer version: %v", got)
	}
}
