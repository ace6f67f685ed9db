package webhook

import (
	"testing"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
)

func TestCarrierAcked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want bool
	}{
		{`{"ack":"ok"}`, true},
		{` { "ack" : "OK" } `, true},
		{`{"ack":"ok","id":7}`, true},
		{`{'ack':'ok'}`, true},
		{`{"ack":"no"}`, false},
		{`{"ack":true}`, false},
		{`ok`, false},
		{`OK`, false},
		{``, false},
		{`{"status":"ok"}`, false},
		{`{"ack":"ok"`, false},
	} {
		if got := carrierAcked([]byte(tc.body)); got != tc.want {
			t.Errorf("carrierAcked(%q) = %v, want %v", tc.body, got, tc.want)
		}
	}
}

func TestEventName(t *testing.T) {
	t.Parallel()
	for typ, want := range map[eventsv1.EventType]string{
		eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED:        "call.completed",
		eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED:          "leg.answered",
		eventsv1.EventType_EVENT_TYPE_ANNOUNCEMENT_FINISHED: "announcement.finished",
	} {
		if got := EventName(typ); got != want {
			t.Errorf("EventName(%v) = %q, want %q", typ, got, want)
		}
	}
}
