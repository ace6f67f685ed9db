package conformance

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the suite: in sim mode every
// simulator a test started must have stopped completely, connections and
// channels included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
