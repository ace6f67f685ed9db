package rating

import "testing"

// forget drops a tariff as a replica that missed its notifications would
// not have it: a reload of the current version (on use) puts it back, an
// older one does not.
func (b *Book) forget(id string) { b.drop(id, 0) }

// A reload that read a tariff before it was deleted does not put it back;
// a newer version does.
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
	put(1) // reloads that started before the deletion
	put(2)
	if b.Get("t1") != nil {
		t.Fatal("a stale reload brought a deleted tariff back")
	}
	put(3)
	if got := b.Get("t1"); got == nil || got.Version != 3 {
		t.Fatalf("a newer version %v, want 3", got)
	}
	b.forget("t1")
	put(2) // a reload still in flight from before
	if b.Get("t1") != nil {
		t.Fatal("an older reload came back after forget")
	}
	put(3) // loaded again on use: the current version
	if got := b.Get("t1"); got == nil || got.Version != 3 {
		t.Fatalf("reloaded %v, want version 3", got)
	}
	b.Remove("t1")
	b.Remove("t1") // removing what is not there is a no-op
	put(4)
	if got := b.Get("t1"); got == nil || got.Version != 4 {
		t.Fatalf("after removal, a newer version: %v", got)
	}
}
