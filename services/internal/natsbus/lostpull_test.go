package natsbus

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/natsbus/natstest"
)

// pullDropper is a TCP proxy between a client and a NATS server that drops
// the client's first pull request (a publish to
// $JS.API.CONSUMER.MSG.NEXT.…): the client then waits on a request the
// server never had, as when nats.go loses one itself (see pullHeartbeat).
type pullDropper struct {
	ln      net.Listener
	target  string
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func startPullDropper(t *testing.T, target string) *pullDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pullDropper{ln: ln, target: strings.TrimPrefix(target, "nats://")}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *pullDropper) url() string { return "nats://" + p.ln.Addr().String() }

func (p *pullDropper) serve() {
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		conns.Go(func() {
			_, _ = io.Copy(client, server)
			_ = client.Close()
		})
		conns.Go(func() {
			p.forward(server, client)
			_ = server.Close()
		})
	}
}

// forward copies the client's protocol lines to the server, leaving out the
// first pull request with its payload.
func (p *pullDropper) forward(server io.Writer, client io.Reader) {
	r := bufio.NewReader(client)
	w := bufio.NewWriter(server)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(string(line))
		var payload []byte
		if len(fields) >= 3 && (fields[0] == "PUB" || fields[0] == "HPUB") {
			n, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				return
			}
			payload = make([]byte, n+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if strings.HasPrefix(fields[1], "$JS.API.CONSUMER.MSG.NEXT.") && p.dropped.CompareAndSwap(0, 1) {
				continue
			}
		}
		_, _ = w.Write(line)
		_, _ = w.Write(payload)
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// A lost pull request stalls a consumer only until two heartbeats are
// missed (2 s), not for nats.go's default 30 s. Both kinds of consumer read
// through the same iterator.
func TestLostPullRequestRecovered(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"per message", "batches"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t)
			proxy := startPullDropper(t, srv.URL())
			b := dial(t, proxy.url())
			if err := b.EnsureStream(t.Context(), Calls(0)); err != nil {
				t.Fatal(err)
			}
			delivered := make(chan string, 10)
			spec := ConsumerSpec{Durable: "lost"}
			if kind == "per message" {
				consume(t, b, spec, func(_ context.Context, m Msg) error {
					delivered <- m.MsgID
					return nil
				})
			} else {
				consumeBatch(t, b, BatchSpec{ConsumerSpec: spec}, func(_ context.Context, msgs []Msg) error {
					for _, m := range msgs {
						delivered <- m.MsgID
					}
					return nil
				})
			}
			ids := publishN(t, b, "lost", 3)

			// Well short of the 30 s the library's default heartbeat takes to
			// notice, and ample for 2 s on a loaded machine.
			deadline := time.After(15 * time.Second)
			for i, want := range ids {
				select {
				case got := <-delivered:
					if got != want {
						t.Fatalf("delivery %d is %s, want %s", i, got, want)
					}
				case <-deadline:
					t.Fatalf("%d of %d delivered after the first pull request was lost", i, len(ids))
				}
			}
			if proxy.dropped.Load() != 1 {
				t.Fatal("the proxy dropped no pull request: the test proves nothing")
			}
		})
	}
}
