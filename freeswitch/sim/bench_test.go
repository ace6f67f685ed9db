package sim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// benchClient is a minimal raw ESL client for benchmarks: it reads frames
// (headers, Content-Length body) and writes commands.
type benchClient struct {
	nc net.Conn
	br *bufio.Reader
	mu sync.Mutex
}

func dialBench(tb testing.TB, addr string) *benchClient {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &benchClient{nc: nc, br: bufio.NewReaderSize(nc, 256<<10)}
	if h, _ := c.frame(); h["Content-Type"] != "auth/request" {
		tb.Fatalf("no auth request: %v", h)
	}
	c.send("auth ClueCon")
	if h, _ := c.frame(); h["Reply-Text"] != "+OK accepted" {
		tb.Fatalf("auth: %v", h)
	}
	tb.Cleanup(func() { nc.Close() })
	return c
}

func (c *benchClient) send(cmd string) {
	c.mu.Lock()
	io.WriteString(c.nc, cmd+"\n\n")
	c.mu.Unlock()
}

func (c *benchClient) frame() (map[string]string, []byte) {
	h := map[string]string{}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return nil, nil
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ": ")
		h[k] = v
	}
	n, _ := strconv.Atoi(h["Content-Length"])
	body := make([]byte, n)
	io.ReadFull(c.br, body)
	return h, body
}

// skipFrame reads one frame, keeping only its size: the reader a consumer
// that dispatches events on a few headers would be.
func (c *benchClient) skipFrame() int {
	n := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return -1
		}
		if len(line) == 1 {
			break
		}
		if bytes.HasPrefix(line, []byte("Content-Length: ")) {
			n, _ = strconv.Atoi(string(line[16 : len(line)-1]))
		}
	}
	c.br.Discard(n)
	return n
}

func fastScenario() *scenario.Scenario {
	sc, err := scenario.Parse([]byte(`
name: bench
rules:
  - match: "."
    kind: answer
    ring: 0s
    talk: 0s
`))
	if err != nil {
		panic(err)
	}
	return sc
}

func startBench(tb testing.TB) *Sim {
	s, err := Start(context.Background(), Config{
		ESLAddr: "127.0.0.1:0", ControlAddr: "-", TimeScale: 1, Scenario: fastScenario(),
		MaxSessions: 100000, SessionsPerSecond: 1000000,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkOriginate measures originates per second through bgapi: each
// originate creates a channel, the far end answers at once, and &hangup
// ends it. Baseline in the same run: BenchmarkBgapiStatus, the same bgapi
// and BACKGROUND_JOB path without a channel.
func BenchmarkOriginate(b *testing.B) {
	benchBgapi(b, "originate sofia/gateway/carrier/15551230000 &hangup", "+OK ")
}

// BenchmarkBgapiStatus is the baseline for BenchmarkOriginate.
func BenchmarkBgapiStatus(b *testing.B) {
	benchBgapi(b, "status", "UP ")
}

func benchBgapi(b *testing.B, cmd, want string) {
	s := startBench(b)
	c := dialBench(b, s.ESLAddr())
	c.send("event plain BACKGROUND_JOB")
	c.frame()
	const window = 256 // jobs in flight
	var done atomic.Int64
	errs := make(chan error, 1)
	go func() {
		for done.Load() < int64(b.N) {
			h, body := c.frame()
			if h == nil {
				errs <- fmt.Errorf("connection closed")
				return
			}
			if h["Content-Type"] != "text/event-plain" {
				continue
			}
			ev, err := event.ParsePlain(body)
			if err != nil {
				errs <- err
				return
			}
			if !strings.HasPrefix(ev.Body, want) {
				errs <- fmt.Errorf("job failed: %q", ev.Body)
				return
			}
			done.Add(1)
		}
		errs <- nil
	}()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for int64(i)-done.Load() >= window {
			runtime.Gosched()
		}
		c.send("bgapi " + cmd)
	}
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// BenchmarkEventDelivery measures events delivered to one connection
// subscribed to `event json ALL` while calls run on another connection.
// Baseline in the same run: BenchmarkEventDeliveryRawTCP writes the same
// frames over loopback TCP with no simulator in the way.
func BenchmarkEventDelivery(b *testing.B) {
	s := startBench(b)
	listener := dialBench(b, s.ESLAddr())
	listener.send("event json ALL")
	listener.frame()
	// The driver keeps a window of bgapi originates in flight so that event
	// production, not the driver's round trips, sets the pace.
	driver := dialBench(b, s.ESLAddr())
	driver.send("event plain BACKGROUND_JOB")
	driver.frame()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	window := make(chan struct{}, 64)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case window <- struct{}{}:
			}
			driver.send("bgapi originate sofia/gateway/carrier/15551230000 &hangup")
		}
	}()
	go func() {
		defer wg.Done()
		for {
			h, _ := driver.frame()
			if h == nil {
				return
			}
			if h["Content-Type"] == "text/event-plain" {
				select {
				case <-window:
				default:
				}
			}
		}
	}()
	b.ResetTimer()
	start := time.Now()
	var total int64
	for i := 0; i < b.N; i++ {
		total += int64(listener.skipFrame())
	}
	el := time.Since(start)
	b.StopTimer()
	close(stop)
	s.Close()
	wg.Wait()
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(total)/float64(b.N), "B/event")
}

// BenchmarkEventDeliveryRawTCP is the baseline: pre-encoded frames of the
// same size written to a loopback socket and read back by the same reader.
func BenchmarkEventDeliveryRawTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ev := &event.Event{}
	for i := 0; i < 120; i++ {
		ev.Add("variable_header_"+strconv.Itoa(i), "value-of-a-typical-length-"+strconv.Itoa(i))
	}
	frame := event.AppendFrame(nil, event.JSON, ev)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		bw := bufio.NewWriterSize(nc, 64<<10)
		for {
			if _, err := bw.Write(frame); err != nil {
				return
			}
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := &benchClient{nc: nc, br: bufio.NewReaderSize(nc, 256<<10)}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		c.skipFrame()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(len(frame)), "B/event")
}

// BenchmarkConcurrentChannels holds 10,000 answered, parked channels at
// once and reports the simulator's memory per channel (heap plus goroutine
// stacks). Baseline in the same run: the memory of 10,000 bare parked
// goroutines (runtime cost floor of one goroutine per channel).
func BenchmarkConcurrentChannels(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		s := startBench(b)
		sc, _ := scenario.Parse([]byte("name: hold\nrules:\n  - match: \".\"\n    kind: answer\n    ring: 0s\n    talk: 0s\n"))
		s.LoadScenario(sc)
		c := dialBench(b, s.ESLAddr())
		c.send("event plain BACKGROUND_JOB")
		c.frame()
		before := memInUse()
		go func() {
			for j := 0; j < n; j++ {
				c.send("bgapi originate sofia/gateway/carrier/1555" + strconv.Itoa(1000000+j) + " &park")
			}
		}()
		got := 0
		for got < n {
			h, body := c.frame()
			if h == nil {
				b.Fatal("connection closed")
			}
			if h["Content-Type"] == "text/event-plain" {
				if !strings.Contains(string(body), "%2BOK") && !strings.Contains(string(body), "+OK") {
					b.Fatalf("originate failed: %s", body[len(body)-40:])
				}
				got++
			}
		}
		s.mu.Lock()
		live := len(s.channels)
		s.mu.Unlock()
		if live != n {
			b.Fatalf("live channels = %d, want %d", live, n)
		}
		after := memInUse()
		b.ReportMetric(float64(after-before)/n, "B/channel")
		base := goroutineFloor(n)
		b.ReportMetric(float64(base)/n, "B/bare-goroutine")
		s.Close()
	}
}

func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func goroutineFloor(n int) uint64 {
	before := memInUse()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); <-stop }()
	}
	after := memInUse()
	close(stop)
	wg.Wait()
	return after - before
}
