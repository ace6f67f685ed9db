package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one authenticated event-socket connection.
//
// Replies are matched to commands by position, which is what the protocol
// guarantees: mod_event_socket reads one command at a time per connection
// and writes exactly one command/reply or api/response for each, in order.
// So commands are pipelined (many in flight), and correctness rests on two
// rules that eslgo v1.5.0 breaks:
//
//  1. the order of the pending queue is the order on the wire: a command is
//     queued and written under one lock;
//  2. a caller that gives up does not give up its place: its slot stays
//     queued, and the late reply is consumed there and dropped instead of
//     being handed to the next command.
//
// A reply with nothing pending, or of the wrong kind for the command at the
// head of the queue (an api/response where a bgapi's command/reply is due),
// is a protocol error and kills the connection rather than being handed to
// the wrong caller.
type conn struct {
	nc         net.Conn
	br         *bufio.Reader
	onEvent    func(*frame)    // called on the reader goroutine, in order
	onClose    func(err error) // called once, when the connection ends
	timeout    time.Duration   // CommandTimeout
	load       atomic.Int64    // commands in flight, for picking a connection
	wmu        sync.Mutex      // serializes writes together with queueing
	wbuf       []byte          // guarded by wmu
	pmu        sync.Mutex      // guards pending, closed and err
	pending    []*call         // FIFO of commands awaiting a reply
	closed     bool            // no more commands may be queued
	err        error           // why the connection ended
	done       chan struct{}   // closed when the connection ends
	readerDone chan struct{}   // closed when the reader goroutine has returned
}

// call is one command awaiting its reply.
type call struct {
	ch chan *frame // buffered: the reader never blocks on a caller
	// expect is the content type the command's reply must have; anything
	// else means replies and commands are misaligned.
	expect string
	// inline, if set, runs on the reader goroutine when the reply arrives,
	// before any later frame is read. NodeUp uses it to sit at the exact
	// point of the event stream where the channel list was taken.
	inline func(*frame)
}

func newCall(expect string) *call { return &call{ch: make(chan *frame, 1), expect: expect} }

// dialConn connects to addr and authenticates, all within cfg.DialTimeout
// (and ctx). FreeSWITCH speaks first (auth/request), so a peer that accepts
// the TCP connection and then says nothing is detected here, where
// eslgo.Dial would wait forever.
func dialConn(ctx context.Context, cfg *Config, addr string, onEvent func(*frame), onClose func(error)) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, dialErr(ctx, dctx, "connect", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	deadline, _ := dctx.Deadline()
	_ = nc.SetDeadline(deadline)
	// A cancelled ctx (Client.Close) must not wait for the deadline.
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	br := bufio.NewReaderSize(nc, 64<<10)
	err = handshake(nc, br, cfg.Password)
	if !stop() || err != nil {
		nc.Close()
		if err == nil {
			err = os.ErrDeadlineExceeded
		}
		return nil, dialErr(ctx, dctx, "authenticate", err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{
		nc: nc, br: br, onEvent: onEvent, onClose: onClose, timeout: cfg.CommandTimeout,
		done: make(chan struct{}), readerDone: make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// handshake reads auth/request and answers it. The password goes on the
// wire and nowhere else: errors quote the switch's reply, never the command.
func handshake(nc net.Conn, br *bufio.Reader, password string) error {
	f, err := readFrame(br)
	if err != nil {
		return fmt.Errorf("waiting for auth/request: %w", err)
	}
	if f.contentType != ctAuthRequest {
		return fmt.Errorf("%w: expected auth/request, got %q", ErrProtocol, f.contentType)
	}
	if _, err := nc.Write(appendCommand(nil, "auth "+password)); err != nil {
		return fmt.Errorf("sending auth: %w", err)
	}
	for {
		f, err = readFrame(br)
		if err != nil {
			return fmt.Errorf("waiting for auth reply: %w", err)
		}
		if f.contentType == ctReply {
			break
		}
		// Nothing else is expected before the reply; tolerate and skip.
	}
	if !strings.HasPrefix(f.replyText, "+OK") {
		return fmt.Errorf("%w: %s", ErrAuth, f.replyText)
	}
	return nil
}

// dialErr maps a dial/handshake failure: our own deadline is ErrTimeout,
// the caller's cancellation is reported as such, anything else as is.
func dialErr(parent, dctx context.Context, what string, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s: %w", what, ctxErr(parent))
	case dctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: %w: no answer within the dial timeout: %w", what, ErrTimeout, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// roundTrip sends one command and waits for its reply, for at most the
// command timeout. If the caller's ctx ends first the slot is abandoned
// (its reply will be dropped) and the connection lives on; if the command
// timeout passes, the connection is presumed dead and closed.
func (c *conn) roundTrip(ctx context.Context, cl *call, line string, headers ...string) (*frame, error) {
	c.load.Add(1)
	defer c.load.Add(-1)
	c.wmu.Lock()
	c.pmu.Lock()
	if c.closed {
		err := c.err
		c.pmu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	c.pending = append(c.pending, cl)
	c.pmu.Unlock()
	c.wbuf = appendCommand(c.wbuf[:0], line, headers...)
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.nc.Write(c.wbuf)
	c.wmu.Unlock()
	if err != nil {
		// A partial write leaves the stream unusable.
		c.fail(fmt.Errorf("write: %w", err))
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case f := <-cl.ch:
		return f, nil
	case <-c.done:
		select {
		case f := <-cl.ch:
			return f, nil
		default:
		}
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, c.cause())
	case <-ctx.Done():
		return nil, ctxErr(ctx)
	case <-timer.C:
		err := fmt.Errorf("%w: no reply within %s", ErrTimeout, c.timeout)
		c.fail(err)
		return nil, err
	}
}

func (c *conn) cause() error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.err
}

// readLoop routes every frame: replies to the head of the pending queue,
// events to onEvent, and ends the connection on any read error, on a
// disconnect notice, or on a reply nobody is waiting for.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	for {
		f, err := readFrame(c.br)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		switch f.contentType {
		case ctReply, ctAPIResponse:
			c.pmu.Lock()
			if len(c.pending) == 0 {
				c.pmu.Unlock()
				c.fail(fmt.Errorf("%w: %s frame with no command pending", ErrProtocol, f.contentType))
				return
			}
			cl := c.pending[0]
			c.pending[0] = nil
			c.pending = c.pending[1:]
			c.pmu.Unlock()
			if f.contentType != cl.expect {
				c.fail(fmt.Errorf("%w: got %s for a command expecting %s", ErrProtocol, f.contentType, cl.expect))
				return
			}
			if cl.inline != nil {
				cl.inline(f)
			}
			cl.ch <- f
		case ctEventJSON, ctEventPlain:
			if c.onEvent != nil {
				c.onEvent(f)
			}
		case ctDisconnect:
			c.fail(fmt.Errorf("disconnect notice: %s", strings.TrimSpace(string(f.body))))
			return
		default:
			// auth/request after auth, log/data: nothing to do.
		}
	}
}

// fail ends the connection once; every caller waiting on it sees done.
func (c *conn) fail(err error) {
	c.pmu.Lock()
	if c.closed {
		c.pmu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	c.pending = nil
	c.pmu.Unlock()
	c.nc.Close()
	close(c.done)
	if c.onClose != nil {
		c.onClose(err)
	}
}
