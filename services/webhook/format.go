package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/cdr"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Names of the carrier format's two actions.
const (
	ActionCallStart = "callStart"
	ActionCallEnd   = "callEnd"
)

// carrierTime is the carrier's time format, and carrierNever its time of
// what did not happen (as getCdrs answers it).
const (
	carrierTime  = "2006-01-02 15:04:05"
	carrierNever = "1970-01-01 00:00:00"
)

// EventName is the native format's name of an event type: "call.completed",
// "leg.answered", "announcement.started".
func EventName(t eventsv1.EventType) string {
	n := strings.ToLower(strings.TrimPrefix(t.String(), "EVENT_TYPE_"))
	if i := strings.IndexByte(n, '_'); i > 0 {
		return n[:i] + "." + n[i+1:]
	}
	return n
}

// carrierAction is the carrier format's action for an event type: callStart
// when the call is queued (every call is, exactly once), callEnd when it
// ends; "" for the others, which the carrier format does not send.
func carrierAction(t eventsv1.EventType) string {
	switch t {
	case eventsv1.EventType_EVENT_TYPE_CALL_QUEUED:
		return ActionCallStart
	case eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, eventsv1.EventType_EVENT_TYPE_CALL_CANCELED:
		return ActionCallEnd
	}
	return ""
}

// nativeJSON renders events as REST does (lowerCamelCase, enums by name).
var nativeJSON = protojson.MarshalOptions{}

// NativeBody is the native format's body:
// {"type": ..., "timestamp": ..., "data": <the event>}.
func NativeBody(ev *eventsv1.CallEvent) ([]byte, error) {
	data, err := nativeJSON.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}{EventName(ev.GetType()), ev.GetOccurredAt().AsTime().UTC().Format(time.RFC3339Nano), data})
}

// CarrierData is the carrier format's "data": the call as the carrier's
// CRM integration guide lists it, every value a string.
type CarrierData struct {
	CallID         string            `json:"callid"`
	AccountID      string            `json:"account_id"`
	EndpointID     string            `json:"endpoint_id"`
	ANI            string            `json:"ani"`
	DNIS           string            `json:"dnis"`
	DetectTime     string            `json:"detect_time"`
	ConnectTime    string            `json:"connect_time"`
	DisconnectTime string            `json:"disconnect_time"`
	Duration       string            `json:"duration"`
	Type           string            `json:"type"`
	Cost           string            `json:"cost"`
	Variables      map[string]string `json:"variables,omitempty"`
}

// CarrierBody is the carrier format's body: {"action": ..., "data": ...}.
type CarrierBody struct {
	Action string      `json:"action"`
	Data   CarrierData `json:"data"`
}

// NewCarrierBody renders a call for action in loc.
func NewCarrierBody(action string, c *originationv1.Call, loc *time.Location) CarrierBody {
	at := func(t *timestamppb.Timestamp) string {
		if t == nil {
			return carrierNever
		}
		return t.AsTime().In(loc).Format(carrierTime)
	}
	cost, _, _ := cdr.Charges(c)
	d := CarrierData{
		CallID: c.GetId(), AccountID: c.GetAccountId(), EndpointID: endpointOf(c),
		ANI: c.GetFirst().GetAddress(), DNIS: c.GetSecond().GetAddress(),
		DetectTime: at(c.GetCreatedAt()), ConnectTime: at(c.GetBridgedAt()), DisconnectTime: at(c.GetEndedAt()),
		Duration: strconv.Itoa(int(c.GetBillsec())), Type: callType(c), Cost: tariffcsv.FormatMicros(cost),
		Variables: c.GetVariables(),
	}
	if d.ANI == "" {
		d.ANI = partyText(c.GetFirst())
	}
	if d.DNIS == "" {
		d.DNIS = partyText(c.GetSecond())
	}
	return CarrierBody{Action: action, Data: d}
}

// endpointOf is the agent's endpoint of a call: the first leg's if it
// dials one, else the second's.
func endpointOf(c *originationv1.Call) string {
	if id := c.GetFirst().GetParty().GetEndpointId(); id != "" {
		return id
	}
	return c.GetSecond().GetParty().GetEndpointId()
}

// callType is "internal" when both parties are the account's endpoints and
// "out" when Ringback dials a number; "in" for callbacks a caller
// triggered.
func callType(c *originationv1.Call) string {
	first, second := c.GetFirst().GetParty(), c.GetSecond().GetParty()
	switch {
	case first.GetEndpointId() != "" && second.GetEndpointId() != "":
		return "internal"
	case c.GetSource() == originationv1.CallSource_CALL_SOURCE_CALLBACK:
		return "in"
	}
	return "out"
}

func partyText(l *originationv1.Leg) string {
	if n := l.GetParty().GetNumber(); n != "" {
		return n
	}
	return l.GetParty().GetEndpointId()
}

// carrierAcked reports whether a receiver's body is the carrier's
// acknowledgement, {"ack":"ok"} (any case, any spacing; also with the
// single quotes the carrier's own guide prints, which CRMs copied).
func carrierAcked(body []byte) bool {
	var v struct {
		Ack string `json:"ack"`
	}
	if json.Unmarshal(body, &v) != nil {
		if !bytes.ContainsRune(body, '\'') || json.Unmarshal(bytes.ReplaceAll(body, []byte("'"), []byte(`"`)), &v) != nil {
			return false
		}
	}
	return strings.EqualFold(strings.TrimSpace(v.Ack), "ok")
}

// formatOf is a subscription's format with the default applied.
func formatOf(f webhookv1.WebhookFormat) webhookv1.WebhookFormat {
	if f == webhookv1.WebhookFormat_WEBHOOK_FORMAT_UNSPECIFIED {
		return webhookv1.WebhookFormat_WEBHOOK_FORMAT_NATIVE
	}
	return f
}
