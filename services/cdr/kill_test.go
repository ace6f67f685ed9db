package cdr

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/proctest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// The cdr binary is killed with SIGKILL twice while final events stream in;
// once it runs again, every call has exactly one record: nothing lost,
// nothing duplicated.
func TestSIGKILLDuringLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the cdr binary")
	}
	t.Parallel()
	bin := proctest.Build(t, "github.com/ringback/ringback/services/cmd/cdr")
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := func() *proctest.Proc {
		return proctest.Start(t, bin, "DATABASE_URL="+dbURL, "NATS_URL="+ns.URL(),
			"RINGBACK_ADMIN_ADDR=127.0.0.1:0", "RINGBACK_GRPC_ADDR=localhost:0", "RINGBACK_LOG_LEVEL=warn",
			"RINGBACK_CDR_ACK_WAIT=2s", "RINGBACK_CDR_BATCH=200")
	}

	pool, err := store.Open(ctx, dbURL, store.Options{AppName: "cdr-kill-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	bus, err := natsbus.Connect(ctx, ns.URL(), "cdr-kill-test", quietLog(), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		t.Fatal(err)
	}
	count := func() int64 {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM cdr.cdrs`).Scan(&n); err != nil {
			return -1 // not migrated yet
		}
		return n
	}

	cmd := start()
	defer func() { cmd.Kill() }()

	const total = 12_000
	account := "acc-" + ids.NewV4()
	var published atomic.Int64
	done := make(chan error, 1)
	go func() {
		base := time.Now().Add(-time.Hour)
		for i := range total {
			ev := finalEvent(account, base.Add(time.Duration(i)*time.Millisecond), outcomes[i%len(outcomes)])
			b, _ := proto.Marshal(ev)
			if _, err := bus.Publish(ctx, "calls."+account+"."+ev.GetCallId()+".call_completed", ev.GetEventId(), b); err != nil {
				done <- err
				return
			}
			published.Add(1)
			if i%200 == 0 {
				time.Sleep(50 * time.Millisecond) // a sustained load (about 4,000/s), not one burst
			}
		}
		done <- nil
	}()

	for kills := 0; kills < 2; kills++ {
		// Kill once records are being written, mid-stream.
		deadline := time.Now().Add(30 * time.Second)
		for count() < int64((kills+1)*1500) && time.Now().Before(deadline) {
			cmd.Alive(t)
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("kill %d: %d records written, %d events published", kills+1, count(), published.Load())
		cmd.Kill()
		cmd = start()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for count() != total && time.Now().Before(deadline) {
		cmd.Alive(t)
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(); n != total {
		t.Fatalf("%d records after the kills, want %d", n, total)
	}
	var distinct, accounts int64
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT call_id), count(*) FILTER (WHERE account_id = $1) FROM cdr.cdrs`, account).
		Scan(&distinct, &accounts); err != nil {
		t.Fatal(err)
	}
	if distinct != total || accounts != total {
		t.Fatalf("distinct %d, of the account %d, want %d", distinct, accounts, total)
	}
}
