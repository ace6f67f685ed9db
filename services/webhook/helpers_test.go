package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

func quietLog() *slog.Logger {
	if os.Getenv("WEBHOOK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testEnv is the configuration tests start from: loopback receivers
// allowed, retries in milliseconds, a short lease and poll.
func testEnv() map[string]string {
	return map[string]string{
		"RINGBACK_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
		"RINGBACK_WEBHOOK_RETRY_SCHEDULE": "0s,200ms,400ms",
		"RINGBACK_WEBHOOK_POLL_INTERVAL":  "100ms",
		"RINGBACK_WEBHOOK_LEASE":          "3s",
		"RINGBACK_WEBHOOK_BATCH_WAIT":     "5ms",
		"RINGBACK_REMINDER_INTERVAL":      "100ms",
	}
}

// harness is a webhook Service on a database of its own and an in-process
// NATS server.
type harness struct {
	svc   *Service
	st    *Store
	bus   *natsbus.Bus
	nats  *natstest.Server
	dbURL string
}

// startHarness starts the service with testEnv overridden by env.
func startHarness(t testing.TB, env map[string]string) *harness {
	t.Helper()
	vars := testEnv()
	for k, v := range env {
		vars[k] = v
	}
	l := config.NewLoader(config.MapLookup(vars))
	cfg := LoadConfig(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabase(t)
	pool, err := store.Open(ctx, dbURL, store.Options{AppName: "webhook-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	bus, err := natsbus.Connect(ctx, ns.URL(), "webhook-test", quietLog(), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	svc, err := NewService(ctx, cfg, Deps{DB: pool, Bus: bus}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return &harness{svc: svc, st: svc.Store, bus: bus, nats: ns, dbURL: dbURL}
}

// as is a request context acting for account, as the gateway sends it.
func as(account string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, account))
}

// subscribe creates a webhook for account and returns it with its secret.
func (h *harness) subscribe(t testing.TB, account string, w *webhookv1.Webhook) (*webhookv1.Webhook, string) {
	t.Helper()
	resp, err := h.svc.Server.CreateWebhook(as(account), &webhookv1.CreateWebhookRequest{Webhook: w})
	if err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	return resp.GetWebhook(), resp.GetSecret()
}

// publish stores events on the CALLS stream as origination does.
func (h *harness) publish(t testing.TB, evs ...*eventsv1.CallEvent) {
	t.Helper()
	publishTo(t, h.bus, evs...)
}

func publishTo(t testing.TB, bus *natsbus.Bus, evs ...*eventsv1.CallEvent) {
	t.Helper()
	for _, ev := range evs {
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		subject := "calls." + ev.GetAccountId() + "." + ev.GetCallId() + "." +
			strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))
		if _, err := bus.Publish(context.Background(), subject, ev.GetEventId(), data); err != nil {
			t.Fatal(err)
		}
	}
}

// callSpec describes a test call.
type callSpec struct {
	Account  string // default acct-a
	Campaign string
	// Failed makes it fail on the first leg (busy) instead of completing.
	Failed bool
	// ReminderS is the call's reminder_timeout_s.
	ReminderS int32
	// First and Second are the parties' numbers (defaults +34911000001,
	// +34911000002); an "ep:" prefix makes it an endpoint.
	First, Second string
	Start         time.Time // default now
}

// callEvents returns the whole life of a call as origination publishes
// it: queued, dialing, the legs' events, bridged and completed (or the
// first leg's failure), sequences 1..n, each with the call as it is then.
func callEvents(s callSpec) []*eventsv1.CallEvent {
	if s.Account == "" {
		s.Account = "acct-a"
	}
	if s.First == "" {
		s.First = "+34911000001"
	}
	if s.Second == "" {
		s.Second = "+34911000002"
	}
	if s.Start.IsZero() {
		s.Start = time.Now()
	}
	party := func(p string) *originationv1.PartyRef {
		if id, ok := strings.CutPrefix(p, "ep:"); ok {
			return &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: id}}
		}
		return &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: p}}
	}
	c := &originationv1.Call{
		Id: ids.NewV7(), AccountId: s.Account, Source: originationv1.CallSource_CALL_SOURCE_API, CampaignId: s.Campaign,
		Mode: originationv1.CallMode_CALL_MODE_SEQUENTIAL, Status: originationv1.CallStatus_CALL_STATUS_QUEUED,
		First:            &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_FIRST, Party: party(s.First), Address: strings.TrimPrefix(s.First, "ep:")},
		Second:           &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_SECOND, Party: party(s.Second), Address: strings.TrimPrefix(s.Second, "ep:")},
		Variables:        map[string]string{"crm_ticket": "T-1"},
		CreatedAt:        timestamppb.New(s.Start),
		ReminderTimeoutS: s.ReminderS,
	}
	var out []*eventsv1.CallEvent
	at := s.Start
	add := func(t eventsv1.EventType, leg originationv1.LegRole) {
		at = at.Add(100 * time.Millisecond)
		seq := uint32(len(out) + 1)
		out = append(out, &eventsv1.CallEvent{
			EventId: c.GetId() + "." + strconv.Itoa(int(seq)), Sequence: seq,
			OccurredAt: timestamppb.New(at), AccountId: c.GetAccountId(), CallId: c.GetId(), Type: t,
			Call: proto.Clone(c).(*originationv1.Call), Leg: leg, Variables: c.GetVariables(),
		})
	}
	first, second := originationv1.LegRole_LEG_ROLE_FIRST, originationv1.LegRole_LEG_ROLE_SECOND
	add(eventsv1.EventType_EVENT_TYPE_CALL_QUEUED, 0)
	c.Status = originationv1.CallStatus_CALL_STATUS_DIALING
	add(eventsv1.EventType_EVENT_TYPE_CALL_DIALING, 0)
	add(eventsv1.EventType_EVENT_TYPE_LEG_DIALING, first)
	add(eventsv1.EventType_EVENT_TYPE_LEG_RINGING, first)
	if s.Failed {
		c.Status, c.FailedLeg, c.FailureReason = originationv1.CallStatus_CALL_STATUS_FAILED, first, originationv1.FailureReason_FAILURE_REASON_BUSY
		c.HangupCause, c.EndedAt = "USER_BUSY", timestamppb.New(at.Add(100*time.Millisecond))
		add(eventsv1.EventType_EVENT_TYPE_LEG_HANGUP, first)
		add(eventsv1.EventType_EVENT_TYPE_CALL_FAILED, 0)
		return out
	}
	c.First.AnsweredAt = timestamppb.New(at.Add(100 * time.Millisecond))
	add(eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, first)
	add(eventsv1.EventType_EVENT_TYPE_LEG_DIALING, second)
	c.Second.AnsweredAt = timestamppb.New(at.Add(100 * time.Millisecond))
	add(eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, second)
	c.Status, c.BridgedAt = originationv1.CallStatus_CALL_STATUS_BRIDGED, timestamppb.New(at.Add(100*time.Millisecond))
	add(eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, 0)
	c.Status, c.EndedAt, c.Billsec, c.HangupCause = originationv1.CallStatus_CALL_STATUS_COMPLETED, timestamppb.New(at.Add(30*time.Second)), 30, "NORMAL_CLEARING"
	add(eventsv1.EventType_EVENT_TYPE_LEG_HANGUP, first)
	add(eventsv1.EventType_EVENT_TYPE_LEG_HANGUP, second)
	add(eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0)
	return out
}

// seqOf reads the event sequence of a native body.
func seqOf(t testing.TB, body []byte) float64 {
	t.Helper()
	var v struct {
		Data struct {
			Sequence float64 `json:"sequence"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Data.Sequence == 0 {
		t.Fatalf("native body without a sequence: %s", body)
	}
	return v.Data.Sequence
}
