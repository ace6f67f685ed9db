package server

import (
	"context"
	"sync"
)

// Inflight counts live units of work (calls, for origination) and refuses
// new ones once closed. Begin and Close share a lock, so no call can start
// between "draining began" and "the count is read as zero": a separate
// Draining() check followed by an increment would leave that window open.
type Inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // closed when n drops to 0; nil while n == 0
}

// Begin registers one unit of work. ok is false once the Inflight is closed
// (the service is draining): the caller must refuse the work, e.g. with
// codes.Unavailable. end must be called exactly once when the work is over;
// extra calls are ignored.
func (f *Inflight) Begin() (end func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return func() {}, false
	}
	f.n++
	if f.n == 1 {
		f.zero = make(chan struct{})
	}
	var once sync.Once
	return func() { once.Do(f.end) }, true
}

func (f *Inflight) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.zero)
		f.zero = nil
	}
}

// Len returns the number of live units of work.
func (f *Inflight) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// Close makes Begin refuse new work from now on. Live work goes on.
func (f *Inflight) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// Closed reports whether Close was called.
func (f *Inflight) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Wait blocks until no work is live or ctx is done, returning ctx's error
// then. New work may still begin while Wait runs unless Close was called.
func (f *Inflight) Wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		zero := f.zero
		f.mu.Unlock()
		if zero == nil {
			return nil
		}
		select {
		case <-zero:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
