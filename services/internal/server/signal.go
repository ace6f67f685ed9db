package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// ErrDrainRequested is the cancel cause of a context drained by WithStages'
// drain function; NotifyContext's cause names the signal instead.
var ErrDrainRequested = errors.New("drain requested")

type forceKey struct{}

// Forced returns the channel that closes at the second stage of a shutdown:
// the second SIGINT/SIGTERM under NotifyContext, or force() under
// WithStages. It is nil (never ready) for a context made otherwise, so
// Run on a plain cancelable context drains until the shutdown timeout.
func Forced(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(forceKey{}).(chan struct{})
	return ch
}

// WithStages returns a context for Run and the two stages of its shutdown:
// drain cancels ctx (first stage: refuse new calls, wait for live ones) and
// force closes Forced(ctx) (second stage: exit now; it cancels ctx too).
// Both may be called many times. NotifyContext wires them to signals; tests
// and cmd/ringback call them directly.
func WithStages(parent context.Context) (ctx context.Context, drain, force func()) {
	ctx, cancel := context.WithCancelCause(parent)
	forceCh := make(chan struct{})
	ctx = context.WithValue(ctx, forceKey{}, forceCh)
	var once sync.Once
	drain = func() { cancel(ErrDrainRequested) }
	force = func() {
		cancel(ErrForced)
		once.Do(func() { close(forceCh) })
	}
	return ctx, drain, force
}

// NotifyContext is main's signal wiring for a two-stage shutdown: the first
// SIGINT or SIGTERM cancels ctx (its cause names the signal), the second
// closes Forced(ctx). stop releases the signals, after which they act as
// the Go runtime's default does (terminate); call it when run returns.
//
//	func main() {
//		ctx, stop := server.NotifyContext(context.Background())
//		defer stop()
//		if err := run(ctx, os.Getenv); err != nil { ... os.Exit(1) }
//	}
func NotifyContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	forceCh := make(chan struct{})
	ctx = context.WithValue(ctx, forceKey{}, forceCh)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		received := 0
		for {
			select {
			case sig := <-sigs:
				received++
				if received == 1 {
					cancel(fmt.Errorf("received %v: %w", sig, ErrDrainRequested))
					continue
				}
				close(forceCh)
				return
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
			<-exited
			cancel(context.Canceled)
		})
	}
	return ctx, stop
}
