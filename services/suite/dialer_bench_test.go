package suite

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/proctest"
)

// A record of the benchmark's list: its numbers (national, US) and the
// final state its numbers' far ends must lead to.
type benchRecord struct {
	numbers string // "|"-separated, as in the CSV
	status  string
	tries   int
}

// benchMix is the list's make-up, per 100 records, by the simulator's
// default scenario (freeswitch/sim/scenario): the number's last digits
// decide its far end. With 3 attempts and the given final states.
var benchMix = []struct {
	share    int
	suffixes []string // one per number of the record
	status   string
	tries    int
}{
	{55, []string{"123"}, "answered", 1},        // answers after about 1 s
	{10, []string{"486", "123"}, "answered", 2}, // busy, then the second number answers
	{10, []string{"486"}, "busy", 3},            // busy every time
	{8, []string{"408"}, "noanswer", 3},         // rings out every time
	{5, []string{"404"}, "failed", 1},           // unallocated: final at once
	{5, []string{"503"}, "failed", 3},           // congestion, retried
	{4, []string{"0666"}, "answered", 1},        // an answering machine (no detection): answered
	{3, []string{"777"}, "dnc", 0},              // on the account's do-not-call list: never dialed
}

// benchList builds n records: distinct numbers (area and exchange from
// the record's index), the make-up of benchMix.
func benchList(n int) []benchRecord {
	var kinds []int
	for k, m := range benchMix {
		for range m.share {
			kinds = append(kinds, k)
		}
	}
	out := make([]benchRecord, n)
	for i := range out {
		m := benchMix[kinds[i%len(kinds)]]
		var nums []string
		for j, suf := range m.suffixes {
			// Four digits of line: a distinct first digit per number of
			// the record, unless the suffix takes all four.
			line := suf
			if len(suf) == 3 {
				line = strconv.Itoa(1+j+2*(i/560000)) + suf
			}
			nums = append(nums, fmt.Sprintf("%03d%03d%s", 201+i%700, 200+(i/700)%800, line))
		}
		out[i] = benchRecord{numbers: strings.Join(nums, "|"), status: m.status, tries: m.tries}
	}
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDialerCampaign runs a campaign of DIALER_BENCH_RECORDS records
// (default 100,000) with realistic outcomes (benchMix) to FINISHED through
// the whole suite and the simulator at time scale 10: the REST import, the
// dialer engine in its own process (the suite's dialer serves the API
// only, RINGBACK_DIALER_ENGINE=false), origination, rating, the switch.
// Then every record's final state is checked against what its numbers'
// far ends do, every attempt against an ended call, and the switch's
// originates against the attempts (nothing dialed twice or lost).
//
// Reported: records/s and dials/s over the run; the dialer process's CPU
// (from /proc) in cores; and how full the engine kept its cap: the mean of
// the calls live (the campaign's progress, sampled every 250 ms) over the
// cap, the baseline being a cap always full (1.0); and the channels live on
// the switch over the cap (the share of the cap's time spent in calls
// rather than in placing them and learning how they ended).
func BenchmarkDialerCampaign(b *testing.B) {
	records := envInt("DIALER_BENCH_RECORDS", 100000)
	limit := envInt("DIALER_BENCH_CAP", 400)
	bin := proctest.Build(b, "github.com/ringback/ringback/services/cmd/dialer")
	info, dbURL := startBench(b, 10, nil, map[string]string{"RINGBACK_DIALER_ENGINE": "false"})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	name := fmt.Sprintf("dialer-bench-%d", time.Now().UnixNano())
	child := proctest.Start(b, bin,
		"DATABASE_URL="+dbURL, "NATS_URL="+info.NATSURL, "RINGBACK_ORIGINATION_ADDR="+info.OriginationAt, "RINGBACK_INSTANCE="+name,
		"RINGBACK_GRPC_ADDR=localhost:0", "RINGBACK_ADMIN_ADDR=127.0.0.1:0", "RINGBACK_DIALER_DEFAULT_HOURS=00:00-24:00",
		"RINGBACK_LOG_LEVEL=error")
	e := &e2e{info: info, key: info.DevKey}
	list := benchList(records)
	var csv strings.Builder
	csv.WriteString("Phone,Name\n")
	var dnc []string
	for i, r := range list {
		fmt.Fprintf(&csv, "%s,Recipient %d\n", r.numbers, i)
		if r.status == "dnc" {
			dnc = append(dnc, "+1"+r.numbers)
		}
	}
	for i := 0; i < len(dnc); i += 1000 {
		body := `{"numbers":["` + strings.Join(dnc[i:min(i+1000, len(dnc))], `","`) + `"]}`
		if code, out := e.do(b, "POST", "/v1/dialer/do-not-call", e.key, body); code != 200 {
			b.Fatalf("do-not-call: %d %v", code, out)
		}
	}
	var recSum, dialSum, cpuSum, fullSum, switchSum, lagAll float64
	nc, err := nats.Connect(info.NATSURL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	var outcomes jetstream.Consumer
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if outcomes, err = js.Consumer(ctx, natsbus.CallsStream, dialer.OutcomesDurable); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the dialer's consumer: %v", err)
		}
	}
	for b.Loop() {
		b.StopTimer()
		code, out := e.do(b, "POST", "/v1/dialer/campaigns", e.key, fmt.Sprintf(`{"name":"Bench %d","defaultCountry":"US",`+
			`"maxConcurrentCalls":%d,"dialAttempts":3,"dialTimeoutMs":15000,`+
			`"retryIntervals":{"busyS":1,"noAnswerS":1,"congestionS":1,"failedS":1,"machineS":1},`+allDay+`}`, time.Now().UnixNano(), limit))
		if code != 200 {
			b.Fatalf("create: %d %v", code, out)
		}
		id := dig(out, "campaign", "id")
		if imp := e.importList(b, e.key, id, csv.String()); dig(imp, "list", "records") != strconv.Itoa(records) {
			b.Fatalf("import: %v", imp)
		}
		before, err := simCounters(info.SimControlURL)
		if err != nil {
			b.Fatal(err)
		}
		cpu0 := procCPU(b, child.Pid())
		b.StartTimer()
		began := time.Now()
		if code, out := e.do(b, "POST", "/v1/dialer/campaigns/"+id+":start", e.key, `{}`); code != 200 {
			b.Fatalf("start: %d %v", code, out)
		}
		var liveSum, chanSum, lagSum, samples float64
		for {
			time.Sleep(250 * time.Millisecond)
			child.Alive(b)
			_, out := e.do(b, "GET", "/v1/dialer/campaigns/"+id, e.key, "")
			if dig(out, "campaign", "status") == "CAMPAIGN_STATUS_FINISHED" {
				break
			}
			live, _ := strconv.Atoi(dig(out, "campaign", "progress", "live"))
			ch, _ := simCounters(info.SimControlURL)
			liveSum, chanSum, samples = liveSum+float64(live), chanSum+float64(ch["channels"]), samples+1
			if ci, err := outcomes.Info(ctx); err == nil {
				lagSum += float64(ci.NumPending + uint64(ci.NumAckPending))
			}
			if time.Since(began) > 30*time.Minute {
				b.Fatalf("not finished after 30 min: %v", out)
			}
		}
		elapsed := time.Since(began)
		b.StopTimer()
		cpu := procCPU(b, child.Pid()) - cpu0
		after, err := simCounters(info.SimControlURL)
		if err != nil {
			b.Fatal(err)
		}
		dials := checkBenchCampaign(b, pool, id, list)
		if got := after["originates"] - before["originates"]; got != dials {
			b.Errorf("the switch saw %d originates, the dialer made %d calls", got, dials)
		}
		recSum += float64(records) / elapsed.Seconds()
		dialSum += float64(dials) / elapsed.Seconds()
		cpuSum += cpu.Seconds() / elapsed.Seconds()
		fullSum += liveSum / max(samples, 1) / float64(limit)
		switchSum += chanSum / max(samples, 1) / float64(limit)
		lagAll += lagSum / max(samples, 1)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(recSum/n, "records/s")
	b.ReportMetric(dialSum/n, "dials/s")
	b.ReportMetric(cpuSum/n, "dialer-cores")
	b.ReportMetric(fullSum/n, "cap-used")
	b.ReportMetric(switchSum/n, "cap-on-switch")
	b.ReportMetric(lagAll/n, "outcomes-pending")
}

// checkBenchCampaign checks every record's final state and attempts; it
// returns the calls made.
func checkBenchCampaign(b *testing.B, pool *pgxpool.Pool, campaign string, list []benchRecord) (calls int) {
	b.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT r.line, r.status, r.final, r.tries,
			(SELECT count(*) FROM dialer.attempts a WHERE a.record_id = r.id),
			(SELECT count(*) FROM dialer.attempts a WHERE a.record_id = r.id AND a.ended_at IS NULL),
			(SELECT string_agg(a.outcome || ' ' || a.hangup_cause || ' ' || a.call_id, ', ' ORDER BY a.n) FROM dialer.attempts a WHERE a.record_id = r.id)
		FROM dialer.records r WHERE r.campaign_id = $1`, campaign)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	seen, wrong := 0, 0
	for rows.Next() {
		var (
			line                   int64
			st                     string
			final                  bool
			tries, attempts, open_ int
			how                    *string
		)
		if err := rows.Scan(&line, &st, &final, &tries, &attempts, &open_, &how); err != nil {
			b.Fatal(err)
		}
		seen++
		want := list[line-2]
		if st != want.status || !final || tries != want.tries || attempts != want.tries || open_ != 0 {
			if wrong++; wrong <= 10 {
				b.Errorf("record of line %d (%s): %s final=%v tries %d attempts %d (%d open: %v), want %s after %d",
					line, want.numbers, st, final, tries, attempts, open_, deref(how), want.status, want.tries)
			}
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if seen != len(list) || wrong > 0 {
		b.Fatalf("%d records, %d wrong", seen, wrong)
	}
	// Calls made: attempts with a call (a refused try has its key as id).
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM dialer.attempts WHERE campaign_id = $1 AND call_id NOT LIKE 'dialer:%'`,
		campaign).Scan(&calls); err != nil {
		b.Fatal(err)
	}
	return calls
}

// procCPU is the CPU time (user and system) process pid has used.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's ")": state is field 3, utime 14, stime 15.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
