package sim_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
)

// A far end that answers rings first, and never rings after it answered:
// the simulator schedules the 180 and the 200 on separate timers, which a
// loaded machine (or a high time scale) may fire in either order.
func TestFarEndRingsBeforeItAnswers(t *testing.T) {
	t.Parallel()
	s, err := sim.Start(context.Background(), sim.Config{ESLAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", TimeScale: 200,
		SessionsPerSecond: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l := dialESL(t, s)
	l.cmdOK("event plain CHANNEL_PROGRESS CHANNEL_ANSWER", "+OK event listener enabled plain")
	c := dialESL(t, s)
	const n = 200
	for i := range n {
		// ...0002 answers after 100 ms: at 200x, 0.4 ms after its 180. The
		// ring may last an hour of simulated time (18 s here): the default
		// 60 s are 0.3 s at this scale, which a loaded machine's stall can
		// outlast, and the leg would then end unanswered.
		c.send(fmt.Sprintf("bgapi originate {origination_uuid=%s,originate_timeout=3600}sofia/gateway/carrier/1555123%04d &park()", testUUID(), 2+i*10000%10000))
		if r := c.reply(); !strings.HasPrefix(r.get("Reply-Text"), "+OK") {
			t.Fatalf("bgapi: %v", r)
		}
	}
	seen := map[string][]string{}
	answered := 0
	for answered < n {
		f, err := l.readFrameBy(time.Now().Add(5 * time.Second))
		if err != nil {
			odd := map[string][]string{}
			for uuid, evs := range seen {
				if len(evs) != 2 {
					odd[uuid] = evs
				}
			}
			t.Fatalf("%d of %d answered: %v; channels without two events: %v", answered, n, err, odd)
		}
		ev, ok, _ := parseEvent(f)
		if !ok {
			continue
		}
		uuid := ev["Unique-ID"]
		seen[uuid] = append(seen[uuid], ev.name())
		if ev.name() == "CHANNEL_ANSWER" {
			answered++
		}
	}
	for uuid, evs := range seen {
		if len(evs) != 2 || evs[0] != "CHANNEL_PROGRESS" || evs[1] != "CHANNEL_ANSWER" {
			t.Fatalf("channel %s: %v, want CHANNEL_PROGRESS then CHANNEL_ANSWER", uuid, evs)
		}
	}
}
