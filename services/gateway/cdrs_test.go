package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
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
