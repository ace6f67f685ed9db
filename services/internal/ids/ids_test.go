package ids

import (
	"regexp"
	"testing"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-([47])[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIDs(t *testing.T) {
	t.Parallel()
	prev := ""
	seen := map[string]bool{}
	for range 1000 {
		v7, v4 := NewV7(), NewV4()
		if m := uuidRe.FindStringSubmatch(v7); m == nil || m[1] != "7" {
			t.Fatalf("NewV7() = %q", v7)
		}
		if m := uuidRe.FindStringSubmatch(v4); m == nil || m[1] != "4" {
			t.Fatalf("NewV4() = %q", v4)
		}
		if v7[:13] < prev[:min(len(prev), 13)] {
			t.Fatalf("NewV7 went back in time: %s after %s", v7, prev)
		}
		if seen[v7] || seen[v4] {
			t.Fatalf("repeated id")
		}
		seen[v7], seen[v4], prev = true, true, v7
	}
}
