package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/internal/proctest"
)

// The failover test: three dialer replicas (the suite's and two
// child processes) run one campaign; the child holding the most records is
// killed with SIGKILL mid-campaign. Its records are taken over within 10 s,
// the campaign finishes, every record was dialed exactly once (by the
// dialer's attempts, origination's calls and the switch's originates) and
// the campaign's cap held across the replicas throughout.
func TestDialerReplicaSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills dialer binaries")
	}
	const (
		records  = 160
		maxCalls = 20
		lease    = "3s" // as start() gives the suite's replica
		// 40 simulated seconds of tone: ~4 s of real time at the suite's
		// time scale of 10, so that calls outlive a lease.
		announcement = "tone_stream://%(40000,0,350)"
		takeoverMax  = 10 * time.Second
	)
	bin := proctest.Build(t, "github.com/ringback/ringback/services/cmd/dialer")
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// Two more replicas, each under its own name, in pg_stat_activity too.
	replicas := map[string]*proctest.Proc{}
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("dialer-kill-r%d-%d", i, time.Now().UnixNano())
		replicas[name] = proctest.Start(t, bin,
			"DATABASE_URL="+withAppName(t, e.db, name), "NATS_URL="+e.info.NATSURL,
			"RINGBACK_ORIGINATION_ADDR="+e.info.OriginationAt, "RINGBACK_INSTANCE="+name,
			"RINGBACK_GRPC_ADDR=localhost:0", "RINGBACK_ADMIN_ADDR=127.0.0.1:0",
			"RINGBACK_DIALER_LEASE="+lease, "RINGBACK_DIALER_DEFAULT_HOURS=00:00-24:00",
			"RINGBACK_LOG_LEVEL=warn")
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(DISTINCT application_name) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE 'dialer-kill-r%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(replicas) {
			break
		}
		for _, p := range replicas {
			p.Alive(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d child replicas connected to the database within 60 s", n, len(replicas))
		}
	}

	code, out := e.do(t, "POST", "/v1/dialer/campaigns", e.key, fmt.Sprintf(`{"name":"Failover","defaultCountry":"US",`+
		`"maxConcurrentCalls":%d,"dialAttempts":1,"onAnswer":{"announcement":%q},`+allDay+`}`, maxCalls, announcement))
	if code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := dig(out, "campaign", "id")
	var csv strings.Builder
	csv.WriteString("Phone,Name\n")
	for i := range records {
		// 555-2xx-0000 .. 555-3xx-0000: distinct numbers that answer and
		// stay up until the announcement ends.
		fmt.Fprintf(&csv, "555%03d0000,Record %d\n", 200+i, i)
	}
	if imp := e.importList(t, e.key, id, csv.String()); dig(imp, "list", "records") != strconv.Itoa(records) {
		t.Fatalf("import: %v", imp)
	}

	// The cap, sampled across replicas: live records in the database and
	// live channels on the switch (one per call: no second party).
	var (
		sampleMu             sync.Mutex
		maxLive, maxChannels int
		samples              int
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var live int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM dialer.records WHERE campaign_id = $1 AND status IN ('running', 'talking')`,
				id).Scan(&live); err != nil {
				continue
			}
			ch, _ := simCounters(e.info.SimControlURL)
			sampleMu.Lock()
			maxLive, maxChannels, samples = max(maxLive, live), max(maxChannels, ch["channels"]), samples+1
			sampleMu.Unlock()
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		<-sampled
	}()

	started := time.Now()
	if code, out := e.do(t, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 {
		t.Fatalf("start: %d %v", code, out)
	}

	// Kill the child holding the most records once it has a call up.
	var victim string
	var held int
	for deadline := time.Now().Add(45 * time.Second); victim == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no child replica held a record with a call up within 45 s")
		}
		rows, err := pool.Query(ctx, `SELECT lease_owner, count(*) FROM dialer.records
			WHERE campaign_id = $1 AND status IN ('running', 'talking') AND lease_owner LIKE 'dialer-kill-r%'
			GROUP BY lease_owner HAVING count(*) FILTER (WHERE status = 'talking') > 0`, id)
		if err != nil {
			t.Fatal(err)
		}
		var owner string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&owner, &n}, func() error {
			if n > held {
				victim, held = owner, n
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	replicas[victim].Kill()
	killed := time.Now()
	var leased []int64
	rows, err := pool.Query(ctx, `SELECT id FROM dialer.records WHERE lease_owner = $1 AND status IN ('running', 'talking')`, victim)
	if err != nil {
		t.Fatal(err)
	}
	if leased, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s %s after the start, holding %d records", victim, killed.Sub(started).Round(time.Millisecond), len(leased))

	// (1) Its records are taken over: adopted by a live replica, or their
	// outcome recorded.
	var takeover time.Duration
	for deadline := killed.Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM dialer.records WHERE id = ANY($1) AND lease_owner = $2 AND status IN ('running', 'talking')`,
			leased, victim).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			takeover = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the killed replica's %d records still its own 30 s after the kill", n, len(leased))
		}
	}
	var adopted, ended int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE lease_owner <> ''), count(*) FILTER (WHERE lease_owner = '')
		FROM dialer.records WHERE id = ANY($1)`, leased).Scan(&adopted, &ended); err != nil {
		t.Fatal(err)
	}
	t.Logf("takeover of %d records %s after the kill (%d adopted, %d ended)", len(leased), takeover.Round(time.Millisecond), adopted, ended)
	if takeover > takeoverMax {
		t.Errorf("takeover took %s, want at most %s with a %s lease", takeover.Round(time.Millisecond), takeoverMax, lease)
	}

	// (2) The campaign finishes.
	c := e.waitCampaign(t, e.key, id, "CAMPAIGN_STATUS_FINISHED", 120*time.Second)
	t.Logf("finished %s after the start: %v", time.Since(started).Round(time.Millisecond), c["progress"])
	close(stopSampling)
	<-sampled
	for name, p := range replicas {
		if name != victim {
			p.Alive(t)
		}
	}

	// (3) Every record is final, answered, in one try, with one attempt.
	var run int
	if err := pool.QueryRow(ctx, `SELECT run FROM dialer.campaigns WHERE id = $1`, id).Scan(&run); err != nil {
		t.Fatal(err)
	}
	var total, answered, oneTry int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE final AND status = $2),
			count(*) FILTER (WHERE tries = 1 AND run = $3) FROM dialer.records WHERE campaign_id = $1`,
		id, dialer.StatusAnswered, run).Scan(&total, &answered, &oneTry); err != nil {
		t.Fatal(err)
	}
	if total != records || answered != records || oneTry != records {
		t.Errorf("records %d, final and answered %d, of one try in run %d: %d; want %d each", total, answered, run, oneTry, records)
	}
	type tally struct{ attempts, answered, calls int }
	perRecord := map[int64]*tally{}
	rows, err = pool.Query(ctx, `SELECT record_id, count(*), count(*) FILTER (WHERE outcome = $3), count(DISTINCT call_id)
		FROM dialer.attempts WHERE campaign_id = $1 AND run = $2 GROUP BY record_id`, id, run, dialer.StatusAnswered)
	if err != nil {
		t.Fatal(err)
	}
	var (
		rec     int64
		tl      tally
		twice   []string
		checked int
	)
	if _, err := pgx.ForEachRow(rows, []any{&rec, &tl.attempts, &tl.answered, &tl.calls}, func() error {
		x := tl
		perRecord[rec] = &x
		if x.attempts != 1 || x.answered != 1 {
			twice = append(twice, fmt.Sprintf("record %d: %d attempts, %d answered", rec, x.attempts, x.answered))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(perRecord) != records || len(twice) > 0 {
		t.Errorf("attempts of %d records (want %d); not one answered attempt: %v", len(perRecord), records, twice)
	}

	// Origination placed one call per record (its events, as JetStream
	// consumers see them), and the switch saw one originate per record.
	var callsOf map[string][]string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		callsOf = e.dialerCalls(id)
		if len(callsOf) >= records || time.Now().After(deadline) {
			break
		}
	}
	twice = twice[:0]
	for r, calls := range callsOf {
		checked++
		if len(calls) != 1 {
			twice = append(twice, fmt.Sprintf("record %s: calls %v", r, calls))
		}
	}
	if checked != records || len(twice) > 0 {
		t.Errorf("origination's calls for %d records (want %d); dialed more than once: %v", checked, records, twice)
	}
	if ch, err := simCounters(e.info.SimControlURL); err != nil || ch["originates"] != records {
		t.Errorf("the switch saw %d originates (%v), want %d", ch["originates"], err, records)
	}

	// (4) The cap held across the replicas.
	sampleMu.Lock()
	defer sampleMu.Unlock()
	t.Logf("at most %d live records and %d live channels over %d samples (cap %d)", maxLive, maxChannels, samples, maxCalls)
	if maxLive > maxCalls || maxChannels > maxCalls {
		t.Errorf("the cap of %d was exceeded: %d live records, %d live channels at once", maxCalls, maxLive, maxChannels)
	}
	if maxLive < maxCalls/2 {
		t.Errorf("at most %d live records: the campaign never ran near its cap of %d", maxLive, maxCalls)
	}
}

// withAppName sets the application_name a replica shows in
// pg_stat_activity.
func withAppName(t *testing.T, dbURL, name string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// simCounters reads the simulator's counters.
func simCounters(controlURL string) (map[string]int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(controlURL + "/counters")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// dialerCalls are the calls origination placed for a campaign, by record
// (its dialer_record_id variable), from the events collected.
func (e *e2e) dialerCalls(campaign string) map[string][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string][]string{}
	for callID, evs := range e.events {
		for _, ev := range evs {
			v := ev.GetCall().GetVariables()
			if v[dialer.VarCampaign] == campaign && v[dialer.VarRecord] != "" {
				out[v[dialer.VarRecord]] = append(out[v[dialer.VarRecord]], callID)
				break
			}
		}
	}
	return out
}
