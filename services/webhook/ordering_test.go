package webhook

import (
	"context"
	"testing"
	"time"

	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/webhook/webhooktest"
)

// Every event of every call reaches a native subscription once the
// receiver acks it, in each call's order, even when the events of a call
// are published out of order (as a redelivery after a crash brings them)
// and the receiver refuses some attempts.
func TestNativeDeliveryInOrderPerCall(t *testing.T) {
	t.Parallel()
	// The circuit breaker has its own test: here, refusals must not pause the endpoint.
	h := startHarness(t, map[string]string{"RINGBACK_WEBHOOK_BREAKER_FAILURES": "1000"})
	// About one delivery in five fails once (by the last digit of its id).
	failsOnce := func(id string) bool { return id[len(id)-1]%5 == 0 }
	recv := webhooktest.Start(t, func(r webhooktest.Request) (int, string, time.Duration) {
		if r.N == 1 && failsOnce(r.ID) {
			return 503, "try later", 0
		}
		return 204, "", 0
	})
	_, secret := h.subscribe(t, "acct-a", &webhookv1.Webhook{Url: recv.URL})

	const calls = 20
	want := map[string]int{}
	var n int
	for i := range calls {
		evs := callEvents(callSpec{})
		if i%4 == 0 { // the last events first
			for l, r := 0, len(evs)-1; l < r; l, r = l+1, r-1 {
				evs[l], evs[r] = evs[r], evs[l]
			}
		}
		h.publish(t, evs...)
		want[evs[0].GetCallId()] = len(evs)
		n += len(evs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reqs, err := recv.WaitFor(ctx, func(reqs []webhooktest.Request) bool {
		ok := map[string]bool{}
		for _, r := range reqs {
			if r.N > 1 || !failsOnce(r.ID) {
				ok[r.ID] = true
			}
		}
		return len(ok) >= n
	})
	if err != nil {
		t.Fatal(err)
	}
	// Per call: the sequence numbers of the data, in arrival order, never
	// go back (a retry repeats the same one).
	last := map[string]float64{}
	got := map[string]map[float64]bool{}
	for _, r := range reqs {
		if err := webhooktest.Verify(secret, r); err != nil {
			t.Fatalf("signature: %v", err)
		}
		seq := seqOf(t, r.Body)
		if seq < last[r.CallID] {
			t.Fatalf("call %s: event %v after %v", r.CallID, seq, last[r.CallID])
		}
		last[r.CallID] = seq
		if got[r.CallID] == nil {
			got[r.CallID] = map[float64]bool{}
		}
		got[r.CallID][seq] = true
	}
	for call, k := range want {
		if len(got[call]) != k {
			t.Fatalf("call %s: %d distinct events delivered, want %d", call, len(got[call]), k)
		}
	}
}
