package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"google.golang.org/protobuf/types/known/timestamppb"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The getCdrs records of a completed agent-first call, a failed call and a
// live call match the golden file: the carrier's field names, all strings,
// its time format, 1970-01-01 00:00:00 for calls that never connected and
// duration 0 for live calls.
func TestLegacyRecordGolden(t *testing.T) {
	at := func(s string) *timestamppb.Timestamp {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(tm)
	}
	mx := &ratingv1.AppliedRate{Prefix: "5255", Destination: "Mexico City", RatePerMinuteMicros: 18_500,
		ConnectionFeeMicros: 10_000, MinSeconds: 60, IncrementSeconds: 60, Currency: "MXN"}
	completed := &originationv1.Call{Id: "0193a6f0-7c2e-7b41-9d1a-3f5e8c2b1a00", CreatedAt: at("2026-11-20T17:04:05.250Z"),
		BridgedAt: at("2026-11-20T17:04:19.900Z"), EndedAt: at("2026-11-20T17:06:01.100Z"), Billsec: 101,
		Status: originationv1.CallStatus_CALL_STATUS_COMPLETED,
		First:  &originationv1.Leg{Address: "1001", EndpointName: "maria.lopez", AnsweredAt: at("2026-11-20T17:04:09Z")},
		Second: &originationv1.Leg{Address: "+525512345678", Rate: mx, AnsweredAt: at("2026-11-20T17:04:19.8Z"),
			Billsec: 101, CostMicros: 10_000 + 2*18_500}}
	failed := &originationv1.Call{Id: "0193a6f0-7c2e-7b41-9d1a-3f5e8c2b1a01", CreatedAt: at("2026-11-20T17:10:00Z"),
		EndedAt: at("2026-11-20T17:10:31Z"), Status: originationv1.CallStatus_CALL_STATUS_FAILED,
		First:  &originationv1.Leg{Address: "+525587654321", Rate: mx},
		Second: &originationv1.Leg{Address: "1001", EndpointName: "maria.lopez"}}
	live := &originationv1.Call{Id: "0193a6f0-7c2e-7b41-9d1a-3f5e8c2b1a02", CreatedAt: at("2026-11-20T17:20:00Z"),
		BridgedAt: at("2026-11-20T17:20:12Z"), Billsec: 40, Status: originationv1.CallStatus_CALL_STATUS_BRIDGED,
		First:  &originationv1.Leg{Address: "1002", EndpointName: "juan.perez", AnsweredAt: at("2026-11-20T17:20:04Z")},
		Second: &originationv1.Leg{Address: "+525511112222", Rate: mx, AnsweredAt: at("2026-11-20T17:20:12Z")}}
	mexico, err := time.LoadLocation("America/Mexico_City")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]LegacyCdr{
		"utc":         {LegacyRecord(completed, false, time.UTC), LegacyRecord(failed, false, time.UTC), LegacyRecord(live, true, time.UTC)},
		"mexico_city": {LegacyRecord(completed, false, mexico)},
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden := filepath.Join("testdata", "getcdrs.golden.json")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("getCdrs records differ from %s:\n%s", golden, b)
	}
}

// getCdrs past an account's allowance answers 429 with Retry-After at
// once, without touching the services; other accounts keep theirs; and a
// Redis that cannot be reached lets requests through rather than failing
// them.
func TestGetCdrsRateLimit(t *testing.T) {
	t.Parallel()
	rdb := cachetest.New(t)
	e := newEnvLimited(t, RedisLimiter{Client: rdb, Limit: cache.Limit{Rate: 1, Period: time.Hour, Burst: 2}})
	_, keyA := e.newAccount(t, "limited-a")
	_, keyB := e.newAccount(t, "limited-b")
	get := func(name, key string) resp {
		return e.do(t, req{method: "GET", path: LegacyGetCdrsPath + "?" + url.Values{"username": {name}, "password": {key}, "live": {"1"}}.Encode()})
	}
	for i := range 2 {
		if r := get("limited-a", keyA); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := get("limited-a", keyA)
	var body LegacyResponse
	if r.status != 429 || json.Unmarshal(r.body, &body) != nil || body.Code != ReasonRateLimited || body.Status != "ERROR" {
		t.Fatalf("past the burst: %d %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 3000 || ra > 3600 {
		t.Errorf("Retry-After %q, want about an hour (1 request per hour)", r.header.Get("Retry-After"))
	}
	if n := len(e.fake.methods("ListLiveCalls")); n != 2 {
		t.Errorf("origination asked %d times, want 2 (the refused request goes nowhere)", n)
	}
	if r := get("limited-b", keyB); r.status != 200 {
		t.Fatalf("another account: %d %s", r.status, r.body)
	}
	// Bad credentials are refused before the allowance is consulted.
	if r := get("limited-a", "wrong"); r.status != 401 {
		t.Fatalf("wrong password: %d %s", r.status, r.body)
	}

	down := cache.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond}), "test:")
	t.Cleanup(func() { _ = down.Close() })
	e2 := newEnvLimited(t, RedisLimiter{Client: down, Limit: cache.Limit{Rate: 1, Period: time.Hour, Burst: 1}})
	_, key := e2.newAccount(t, "redis-down")
	for range 3 {
		r := e2.do(t, req{method: "GET", path: LegacyGetCdrsPath + "?" + url.Values{"username": {"redis-down"}, "password": {key}, "live": {"1"}}.Encode()})
		if r.status != 200 {
			t.Fatalf("with Redis unreachable: %d %s", r.status, r.body)
		}
	}
}

// getCdrs parameters are checked with clear errors before anything runs.
func TestGetCdrsBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, key := e.newAccount(t, "params")
	for _, c := range []struct {
		name  string
		query url.Values
		code  int
		want  string
	}{
		{"no password", url.Values{"username": {"params"}, "recent": {"1"}}, 400, ReasonMissingParameter},
		{"no mode", url.Values{"username": {"params"}, "password": {key}}, 400, ReasonMissingParameter},
		{"bad date", url.Values{"username": {"params"}, "password": {key}, "dateStart": {"01/06/2026"}, "dateEnd": {"2026-06-02 00:00:00"}}, 400, ReasonInvalidDate},
		{"cant too big", url.Values{"username": {"params"}, "password": {key}, "dateStart": {"2026-06-01 00:00:00"}, "dateEnd": {"2026-06-02 00:00:00"}, "cant": {"5000"}}, 400, ReasonInvalidArgument},
		{"negative ini", url.Values{"username": {"params"}, "password": {key}, "dateStart": {"2026-06-01"}, "dateEnd": {"2026-06-02"}, "ini": {"-1"}}, 400, ReasonInvalidArgument},
		{"bad tz", url.Values{"username": {"params"}, "password": {key}, "recent": {"1"}, "tz": {"Mars/Olympus"}}, 400, ReasonInvalidArgument},
		{"wrong user", url.Values{"username": {"someone"}, "password": {key}, "recent": {"1"}}, 401, ReasonInvalidCredentials},
	} {
		r := e.do(t, req{method: "GET", path: LegacyGetCdrsPath + "?" + c.query.Encode()})
		var body LegacyResponse
		if r.status != c.code || json.Unmarshal(r.body, &body) != nil || body.Code != c.want {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.code, c.want)
		}
	}
}
