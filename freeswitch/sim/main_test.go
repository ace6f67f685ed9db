package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// simulator a test starts must stop completely on Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
