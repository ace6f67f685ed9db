// Package proctest builds a service's binary and runs it as a child
// process, for tests that kill it with SIGKILL mid-work and start it again.
package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Build compiles the main package pkg (an import path) into the test's
// temporary directory and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return bin
}

// Proc is one run of a binary.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs bin with the test process's environment plus env
// ("NAME=value"), its stderr on the test's; it is killed when the test
// ends.
func Start(t testing.TB, bin string, env ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Kill)
	return p
}

// Alive fails the test if the process has ended by itself.
func (p *Proc) Alive(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("%s exited by itself: %v", filepath.Base(p.cmd.Path), p.cmd.ProcessState)
	default:
	}
}

// Pid is the process's id (to read its CPU time in /proc, say).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill kills the process with SIGKILL (no chance to drain) and waits for
// it to end.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
