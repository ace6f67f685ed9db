package esl_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/esl"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestRepliesReachTheirCommands is the reply-ordering proof: 64 goroutines
// share one Client and fire thousands of mixed commands (api uuid_setvar /
// uuid_getvar on each goroutine's own channel, api eval of a unique token,
// api create_uuid, api status, bgapi eval, and bgapi originates that are
// answered or busy). Every reply is checked against its own request. The
// "one connection" case puts all 64 on a single pipelined socket, the
// hardest case for matching by position.
func TestRepliesReachTheirCommands(t *testing.T) {
	t.Parallel()
	for _, conns := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d command connections", conns), func(t *testing.T) {
			t.Parallel()
			hammer(t, conns)
		})
	}
}

func hammer(t *testing.T, conns int) {
	const (
		workers    = 64
		iterations = 30
	)
	// Scale 20: fast far ends, yet FreeSWITCH's default 60 s
	// originate_timeout is still 3 s of real time under -race load.
	s := startSim(t, 20)
	var (
		jobsMu   sync.Mutex
		jobsSeen = map[string]esl.Event{}
	)
	h := esl.Handlers{Event: func(e esl.Event) {
		if e.Name == "BACKGROUND_JOB" {
			jobsMu.Lock()
			jobsSeen[e.JobUUID()] = e
			jobsMu.Unlock()
		}
	}}
	cfg := testConfig(s.ESLAddr())
	cfg.CommandConns = conns
	c := dial(t, cfg, h)
	node := s.ESLAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var (
		commands   atomic.Int64
		mismatches atomic.Int64
		uuidsMu    sync.Mutex
		uuids      = map[string]bool{}
		bgMu       sync.Mutex
		bgWant     = map[string]string{} // Job-UUID -> expected body
	)
	bad := func(format string, args ...any) {
		if mismatches.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	api := func(cmd string) string {
		commands.Add(1)
		got, err := c.API(ctx, node, cmd)
		if err != nil {
			bad("api %s: %v", cmd, err)
		}
		return got
	}

	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			commands.Add(1)
			own, err := c.Originate(ctx, node, esl.OriginateRequest{
				Dialstring: "sofia/gateway/carrier/1555100" + fmt.Sprintf("%02d", g) + "0000",
				Vars:       map[string]string{"owner": fmt.Sprint(g)},
				Timeout:    answerTimeout,
			})
			if err != nil {
				bad("worker %d originate: %v", g, err)
				return
			}
			for i := range iterations {
				token := fmt.Sprintf("w%02d-i%03d-%s", g, i, esl.NewUUID()[:8])
				if got := api("uuid_setvar " + own.UUID + " probe " + token); got != "+OK" {
					bad("uuid_setvar: %q", got)
				}
				if got := api("uuid_getvar " + own.UUID + " probe"); got != token {
					bad("worker %d: uuid_getvar = %q, want %q", g, got, token)
				}
				if got := api("eval " + token); got != token {
					bad("worker %d: eval %s = %q", g, token, got)
				}
				id := api("create_uuid")
				uuidsMu.Lock()
				if !uuidRE.MatchString(id) || uuids[id] {
					bad("create_uuid = %q (repeated: %v)", id, uuids[id])
				}
				uuids[id] = true
				uuidsMu.Unlock()
				if got := api("status"); !strings.HasPrefix(got, "UP ") {
					bad("status = %.40q", got)
				}
				commands.Add(1)
				job, err := c.BgAPI(ctx, node, "eval bg-"+token)
				if err != nil {
					bad("bgapi: %v", err)
				} else {
					bgMu.Lock()
					bgWant[job] = "bg-" + token
					bgMu.Unlock()
				}
				switch i % 10 {
				case 3:
					commands.Add(1)
					_, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15552000486"})
					var ce *esl.CommandError
					if !errors.As(err, &ce) || ce.Cause() != "USER_BUSY" {
						bad("busy originate: %v", err)
					}
				case 7:
					commands.Add(1)
					want := esl.NewUUID()
					leg, err := c.Originate(ctx, node, esl.OriginateRequest{UUID: want, Dialstring: "sofia/gateway/carrier/15553000000", Timeout: answerTimeout})
					if err != nil || leg.UUID != want {
						bad("answered originate: %+v %v", leg, err)
					}
				}
			}
			if got := api("uuid_getvar " + own.UUID + " owner"); got != fmt.Sprint(g) {
				bad("worker %d: owner = %q", g, got)
			}
		}()
	}
	wg.Wait()

	// Every bgapi's BACKGROUND_JOB must carry its own result.
	deadline := time.Now().Add(10 * time.Second)
	for {
		jobsMu.Lock()
		missing := 0
		for job := range bgWant {
			if _, ok := jobsSeen[job]; !ok {
				missing++
			}
		}
		jobsMu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d BACKGROUND_JOBs never arrived", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
	jobsMu.Lock()
	for job, want := range bgWant {
		ev := jobsSeen[job]
		if ev.Body != want || ev.Get("Job-Command-Arg") != want {
			bad("job %s: body %q arg %q, want %q", job, ev.Body, ev.Get("Job-Command-Arg"), want)
		}
	}
	jobsMu.Unlock()
	t.Logf("%d commands from %d goroutines over %d command connection(s): %d mismatches", commands.Load(), workers, conns, mismatches.Load())
}

// TestEventsDeliveredInOrder: the simulator numbers and queues events under
// one lock, so on one connection Event-Sequence strictly increases; the
// handler must see exactly that order (eslgo does not: see
// TestEslgoEventsOutOfOrder).
func TestEventsDeliveredInOrder(t *testing.T) {
	t.Parallel()
	s := startSim(t, 20)
	var (
		mu   sync.Mutex
		seqs []uint64
	)
	cfg := testConfig(s.ESLAddr())
	cfg.Events = []string{"ALL"}
	c := dial(t, cfg, esl.Handlers{Event: func(e esl.Event) {
		mu.Lock()
		seqs = append(seqs, e.Sequence())
		mu.Unlock()
	}})
	originateBurst(t, c, s.ESLAddr(), 100)
	mu.Lock()
	defer mu.Unlock()
	inversions := 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			inversions++
		}
	}
	if inversions != 0 || len(seqs) < 500 {
		t.Errorf("%d events, %d out of order", len(seqs), inversions)
	}
	t.Logf("%d events, %d out of order", len(seqs), inversions)
}

// originateBurst places n calls concurrently, then hangs them all up.
func originateBurst(t *testing.T, c *esl.Client, node string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15550000000", Timeout: answerTimeout}); err != nil {
				t.Errorf("Originate: %v", err)
			}
		}()
	}
	wg.Wait()
	if _, err := c.API(ctx, node, "hupall NORMAL_CLEARING"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the hangup events arrive
}
