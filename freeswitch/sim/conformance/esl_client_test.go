package conformance

// A deliberately small, independent event-socket client for the conformance
// tests. It keeps every frame it receives (exact bytes, arrival order) so tests
// can assert framing and ordering, and it parses the three event formats
// (json, plain, xml) itself, keeping duplicate keys.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// KV is one header, in wire order. Duplicates are kept.
type KV struct {
	Key, Value string
}

// Frame is one event-socket frame as received.
type Frame struct {
	Headers []KV   // the outer header block, in order
	Body    []byte // Content-Length bytes after the blank line (nil when none)
	Raw     []byte // the exact bytes of the frame (headers, blank line, body)
	Index   int    // arrival position on the connection, from 0
	Event   *Event // parsed event for text/event-* frames
}

// Header returns the first outer header with that name (case-sensitive, as on
// the wire) or "".
func (f *Frame) Header(name string) string {
	for _, h := range f.Headers {
		if h.Key == name {
			return h.Value
		}
	}
	return ""
}

// HasHeader reports whether the outer header block has that header.
func (f *Frame) HasHeader(name string) bool {
	for _, h := range f.Headers {
		if h.Key == name {
			return true
		}
	}
	return false
}

// ContentType is the frame's Content-Type.
func (f *Frame) ContentType() string { return f.Header("Content-Type") }

// IsReply reports whether the frame answers a command (command/reply or
// api/response).
func (f *Frame) IsReply() bool {
	ct := f.ContentType()
	return ct == "command/reply" || ct == "api/response"
}

// ReplyText is the Reply-Text of a command/reply.
func (f *Frame) ReplyText() string { return f.Header("Reply-Text") }

func (f *Frame) String() string {
	s := string(f.Raw)
	if len(s) > 600 {
		s = s[:600] + "...(truncated)"
	}
	return fmt.Sprintf("frame #%d %q", f.Index, s)
}

// Event is a parsed text/event-json, text/event-plain or text/event-xml frame.
type Event struct {
	Format   string // json, plain or xml
	Headers  []KV   // decoded values, in order, duplicates kept
	Raw      []KV   // plain and xml: the values exactly as on the wire (URL-encoded)
	Body     string // json _body, or the plain/xml body
	HasBody  bool
	ParseErr error
	Frame    *Frame
}

// Get returns the first value of a header or "".
func (e *Event) Get(name string) string {
	for _, h := range e.Headers {
		if h.Key == name {
			return h.Value
		}
	}
	return ""
}

// Has reports whether a header is present.
func (e *Event) Has(name string) bool {
	for _, h := range e.Headers {
		if h.Key == name {
			return true
		}
	}
	return false
}

// Values returns every value of a header, in order.
func (e *Event) Values(name string) []string {
	var out []string
	for _, h := range e.Headers {
		if h.Key == name {
			out = append(out, h.Value)
		}
	}
	return out
}

// RawValue returns the first undecoded (wire) value of a header (plain/xml).
func (e *Event) RawValue(name string) string {
	for _, h := range e.Raw {
		if h.Key == name {
			return h.Value
		}
	}
	return ""
}

// Name is Event-Name.
func (e *Event) Name() string { return e.Get("Event-Name") }

// UID is Unique-ID.
func (e *Event) UID() string { return e.Get("Unique-ID") }

// Seq is Event-Sequence (0 when absent or malformed).
func (e *Event) Seq() uint64 {
	n, _ := strconv.ParseUint(e.Get("Event-Sequence"), 10, 64)
	return n
}

// Index is the arrival position of the event's frame on its connection.
func (e *Event) Index() int { return e.Frame.Index }

func (e *Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s seq=%s", e.Frame.Index, e.Name(), e.Get("Event-Sequence"))
	for _, k := range []string{"Unique-ID", "Channel-State", "Channel-Call-State", "Application", "Hangup-Cause", "Job-UUID", "DTMF-Digit"} {
		if v := e.Get(k); v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	return b.String()
}

// Conn is one event-socket connection.
type Conn struct {
	t    testing.TB
	nc   net.Conn
	wait time.Duration

	cmdMu sync.Mutex // one command at a time

	mu       sync.Mutex
	cond     *sync.Cond
	frames   []*Frame
	readErr  error // set when the reader stops (io.EOF on a clean close)
	replyPos int   // index in frames after the last consumed reply
	closed   bool
}

// dialRaw connects without reading anything.
func dialRaw(t testing.TB, addr string, wait time.Duration) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &Conn{t: t, nc: nc, wait: wait}
	c.cond = sync.NewCond(&c.mu)
	go c.readLoop()
	t.Cleanup(func() { c.Close() })
	return c
}

// Close closes the socket.
func (c *Conn) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.nc.Close()
}

func (c *Conn) readLoop() {
	r := bufio.NewReaderSize(c.nc, 64*1024)
	for {
		f, err := readFrame(r)
		c.mu.Lock()
		if f != nil {
			f.Index = len(c.frames)
			c.frames = append(c.frames, f)
		}
		if err != nil {
			c.readErr = err
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// readFrame reads one frame: header lines up to a blank line, then
// Content-Length bytes of body.
func readFrame(r *bufio.Reader) (*Frame, error) {
	var raw bytes.Buffer
	f := &Frame{}
	for {
		line, err := r.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			if err == io.EOF && raw.Len() == 0 {
				return nil, io.EOF
			}
			if err == io.EOF {
				return nil, fmt.Errorf("connection closed inside a frame header after %q: %w", raw.String(), io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			if len(f.Headers) == 0 {
				// FreeSWITCH never sends stray blank lines; keep them visible.
				return nil, fmt.Errorf("stray blank line before a frame header")
			}
			break
		}
		k, v, ok := strings.Cut(trimmed, ": ")
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", trimmed)
		}
		f.Headers = append(f.Headers, KV{k, v})
	}
	if cl := f.Header("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		f.Body = make([]byte, n)
		if _, err := io.ReadFull(r, f.Body); err != nil {
			return nil, fmt.Errorf("short body (want %d bytes): %w", n, err)
		}
		raw.Write(f.Body)
	}
	f.Raw = raw.Bytes()
	switch f.ContentType() {
	case "text/event-json", "text/event-plain", "text/event-xml":
		f.Event = parseEvent(f)
	}
	return f, nil
}

// Send writes raw bytes.
func (c *Conn) Send(s string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.wait))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write %q: %v", trunc(s), err)
	}
}

// TrySend writes raw bytes and reports the error instead of failing.
func (c *Conn) TrySend(s string) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.wait))
	_, err := io.WriteString(c.nc, s)
	return err
}

// Cmd sends a command (first line plus optional header lines) and returns its
// reply frame (the next command/reply or api/response).
func (c *Conn) Cmd(line string, headers ...string) *Frame {
	c.t.Helper()
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	var b strings.Builder
	b.WriteString(line)
	b.WriteString("\n")
	for _, h := range headers {
		b.WriteString(h)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	c.Send(b.String())
	f, err := c.nextReply(c.wait)
	if err != nil {
		c.t.Fatalf("command %q: no reply: %v", trunc(line), err)
	}
	return f
}

// nextReply waits for the next reply frame not yet consumed.
func (c *Conn) nextReply(wait time.Duration) (*Frame, error) {
	deadline := time.Now().Add(wait)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i := c.replyPos; i < len(c.frames); i++ {
			if c.frames[i].IsReply() {
				c.replyPos = i + 1
				return c.frames[i], nil
			}
		}
		if c.readErr != nil {
			return nil, c.readErr
		}
		if !c.waitLocked(deadline) {
			return nil, errors.New("timed out")
		}
	}
}

// waitLocked waits on the condition until deadline; it reports false on timeout.
func (c *Conn) waitLocked(deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	timer := time.AfterFunc(d, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	c.cond.Wait()
	timer.Stop()
	return time.Now().Before(deadline)
}

// API runs "api <cmd>" and returns the api/response body.
func (c *Conn) API(cmd string) string {
	c.t.Helper()
	f := c.Cmd("api " + cmd)
	if f.ContentType() != "api/response" {
		c.t.Fatalf("api %s: want Content-Type api/response, got %s", trunc(cmd), f)
	}
	return string(f.Body)
}

// APIFrame runs "api <cmd>" and returns the whole reply frame.
func (c *Conn) APIFrame(cmd string) *Frame {
	c.t.Helper()
	f := c.Cmd("api " + cmd)
	if f.ContentType() != "api/response" {
		c.t.Fatalf("api %s: want Content-Type api/response, got %s", trunc(cmd), f)
	}
	return f
}

// BgAPI runs "bgapi <cmd>" (with a Job-UUID header when jobUUID is not
// empty) and returns the job id from the reply.
func (c *Conn) BgAPI(cmd, jobUUID string) string {
	c.t.Helper()
	var f *Frame
	if jobUUID != "" {
		f = c.Cmd("bgapi "+cmd, "Job-UUID: "+jobUUID)
	} else {
		f = c.Cmd("bgapi " + cmd)
	}
	rt := f.ReplyText()
	if f.ContentType() != "command/reply" || !strings.HasPrefix(rt, "+OK Job-UUID: ") {
		c.t.Fatalf("bgapi %s: want command/reply '+OK Job-UUID: <id>', got %s", trunc(cmd), f)
	}
	id := strings.TrimPrefix(rt, "+OK Job-UUID: ")
	if f.Header("Job-UUID") != id {
		c.t.Fatalf("bgapi %s: Job-UUID header %q differs from Reply-Text id %q", trunc(cmd), f.Header("Job-UUID"), id)
	}
	return id
}

// Frames returns a snapshot of every frame received so far.
func (c *Conn) Frames() []*Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Frame(nil), c.frames...)
}

// Events returns a snapshot of every event received so far, in arrival order.
func (c *Conn) Events() []*Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Event
	for _, f := range c.frames {
		if f.Event != nil {
			out = append(out, f.Event)
		}
	}
	return out
}

// WaitFrame waits for the first frame (in arrival order, consumed or not)
// matching pred.
func (c *Conn) WaitFrame(wait time.Duration, pred func(*Frame) bool) (*Frame, error) {
	deadline := time.Now().Add(wait)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for _, f := range c.frames {
			if pred(f) {
				return f, nil
			}
		}
		if c.readErr != nil {
			return nil, fmt.Errorf("connection ended (%v) without the frame", c.readErr)
		}
		if !c.waitLocked(deadline) {
			return nil, errors.New("timed out")
		}
	}
}

// WaitEvent waits for the first event matching pred; it fails the test on
// timeout with the given description and the events seen so far.
func (c *Conn) WaitEvent(what string, pred func(*Event) bool) *Event {
	c.t.Helper()
	f, err := c.WaitFrame(c.wait, func(f *Frame) bool { return f.Event != nil && pred(f.Event) })
	if err != nil {
		c.t.Fatalf("waiting for %s: %v\nevents so far:\n%s", what, err, dumpEvents(c.Events()))
	}
	return f.Event
}

// WaitN waits until at least n events match pred and returns all matching
// events. (pred runs with the connection's lock held: it must not call back
// into the Conn.)
func (c *Conn) WaitN(what string, n int, pred func(*Event) bool) []*Event {
	c.t.Helper()
	deadline := time.Now().Add(c.wait)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		var out []*Event
		for _, f := range c.frames {
			if f.Event != nil && pred(f.Event) {
				out = append(out, f.Event)
			}
		}
		if len(out) >= n {
			return out
		}
		if c.readErr != nil || !c.waitLocked(deadline) {
			var all []*Event
			for _, f := range c.frames {
				if f.Event != nil {
					all = append(all, f.Event)
				}
			}
			c.t.Fatalf("waiting for %d x %s: got %d (%v)\nevents so far:\n%s", n, what, len(out), c.readErr, dumpEvents(all))
			return nil
		}
	}
}

// TryWaitEvent is WaitEvent with a custom timeout that reports absence instead
// of failing.
func (c *Conn) TryWaitEvent(wait time.Duration, pred func(*Event) bool) *Event {
	f, err := c.WaitFrame(wait, func(f *Frame) bool { return f.Event != nil && pred(f.Event) })
	if err != nil {
		return nil
	}
	return f.Event
}

// WaitClosed waits until the server closes the connection and returns the
// reader's final error (io.EOF for a clean close).
func (c *Conn) WaitClosed(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.readErr == nil {
		if !c.waitLocked(deadline) {
			return errors.New("timed out: connection still open")
		}
	}
	return c.readErr
}

// ReadErr is the reader's error so far (nil while the connection is open).
func (c *Conn) ReadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// --- event parsing ---------------------------------------------------------

func parseEvent(f *Frame) *Event {
	e := &Event{Frame: f}
	switch f.ContentType() {
	case "text/event-json":
		e.Format = "json"
		e.ParseErr = parseJSONEvent(e, f.Body)
	case "text/event-plain":
		e.Format = "plain"
		e.ParseErr = parsePlainEvent(e, f.Body)
	case "text/event-xml":
		e.Format = "xml"
		e.ParseErr = parseXMLEvent(e, f.Body)
	}
	return e
}

// parseJSONEvent decodes a flat JSON object of strings, keeping duplicate keys
// in order (encoding/json's map decoding would silently drop them).
func parseJSONEvent(e *Event, body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("event JSON does not start with an object: %v", tok)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k, ok := kt.(string)
		if !ok {
			return fmt.Errorf("non-string key %v", kt)
		}
		vt, err := dec.Token()
		if err != nil {
			return err
		}
		v, ok := vt.(string)
		if !ok {
			return fmt.Errorf("key %q: value %v (%T) is not a string", k, vt, vt)
		}
		if k == "_body" {
			e.Body = v
			e.HasBody = true
			continue
		}
		e.Headers = append(e.Headers, KV{k, v})
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the event JSON object")
	}
	return nil
}

// parsePlainEvent parses "Name: url-encoded-value" lines up to a blank line,
// then a body of the length given by the event's own Content-Length header.
func parsePlainEvent(e *Event, body []byte) error {
	s := string(body)
	head, rest, found := strings.Cut(s, "\n\n")
	if !found {
		return errors.New("plain event without the blank line ending its headers")
	}
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return fmt.Errorf("malformed plain event line %q", line)
		}
		e.Raw = append(e.Raw, KV{k, v})
		dv, err := url.PathUnescape(v)
		if err != nil {
			return fmt.Errorf("header %s: bad URL encoding %q: %v", k, v, err)
		}
		e.Headers = append(e.Headers, KV{k, dv})
	}
	if cl := e.RawValue("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n > len(rest) {
			return fmt.Errorf("plain event body: bad Content-Length %q for %d bytes", cl, len(rest))
		}
		e.Body = rest[:n]
		e.HasBody = true
		if n != len(rest) {
			return fmt.Errorf("plain event: %d bytes after the body", len(rest)-n)
		}
	} else if rest != "" {
		return fmt.Errorf("plain event: unexpected data after headers: %q", trunc(rest))
	}
	return nil
}

// parseXMLEvent parses <event><headers><Name>value</Name>...</headers>
// [<Content-Length>n</Content-Length><body>...</body>]</event>.
func parseXMLEvent(e *Event, body []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			name := t.Name.Local
			switch {
			case len(path) == 3 && path[0] == "event" && path[1] == "headers":
				v := text.String()
				e.Raw = append(e.Raw, KV{name, v})
				dv, err := url.PathUnescape(v)
				if err != nil {
					return fmt.Errorf("xml header %s: bad URL encoding %q", name, v)
				}
				e.Headers = append(e.Headers, KV{name, dv})
			case len(path) == 2 && path[0] == "event" && name == "body":
				e.Body = text.String()
				e.HasBody = true
			case len(path) == 2 && path[0] == "event" && name == "Content-Length":
				e.Raw = append(e.Raw, KV{name, text.String()})
			}
			path = path[:len(path)-1]
			text.Reset()
		}
	}
	return nil
}

// --- small helpers ---------------------------------------------------------

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func dumpEvents(evs []*Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("  ")
		b.WriteString(e.String())
		b.WriteString("\n")
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}
