package mailtest

import (
	"fmt"
	"testing"
)

// TestStartClosedAtOnce ends tests right after Start, before the serving
// goroutine may have run: the cleanup must still end the server (it hung
// when only the server's Close was called, which misses a listener Serve
// has not registered yet).
func TestStartClosedAtOnce(t *testing.T) {
	for i := range 200 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			Start(t, Options{})
		})
	}
}
