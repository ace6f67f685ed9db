package cdr

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// IngestDurable is cdr's durable consumer on the CALLS stream.
const IngestDurable = "cdr"

// Ingester turns batches of final call events into records: one multi-row
// statement per batch, acknowledged (by the consumer) only once it has
// committed. A redelivered batch rewrites nothing (see Store.Insert).
type Ingester struct {
	Store *Store
	Log   *slog.Logger
	m     *metrics
}

// Handle is the natsbus batch handler.
func (in *Ingester) Handle(ctx context.Context, msgs []natsbus.Msg) error {
	rows := make([]Row, 0, len(msgs))
	var ev eventsv1.CallEvent
	for _, m := range msgs {
		if !finalSubject(m.Subject) {
			continue // a server without multi-filter consumers sends every event
		}
		raw, err := decodeFinal(m.Data, &ev)
		if err != nil {
			// Retrying cannot fix it; the rest of the batch must not wait.
			in.Log.Error("dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
			in.m.droppedEvent()
			continue
		}
		r, ok := RowFrom(&ev, raw)
		if !ok {
			in.Log.Error("dropping a final event without a whole call", "subject", m.Subject, "msg_id", m.MsgID)
			in.m.droppedEvent()
			continue
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil
	}
	start := time.Now()
	n, err := in.Store.Insert(ctx, rows)
	if err != nil {
		return err
	}
	in.m.inserted(len(rows), int(n), time.Since(start), msgs)
	return nil
}

// decodeFinal decodes what a record needs of an encoded CallEvent (its
// type, sequence, time and call) into ev, and returns the call's encoding,
// stored as is. The call is decoded from its own bytes and the rest of the
// event (its copy of the variables, ids) is skipped: decoding and encoding
// again the whole event was most of the ingest's CPU. An event that holds
// the call more than once (proto merges repeats) is decoded whole and its
// call encoded again, so that what is stored is what proto reads.
func decodeFinal(data []byte, ev *eventsv1.CallEvent) ([]byte, error) {
	ev.Reset()
	var raw, at []byte
	calls := 0
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldSequence && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			ev.Sequence, b = uint32(v), b[m:]
		case num == fieldType && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			ev.Type, b = eventsv1.EventType(int32(v)), b[m:]
		case (num == fieldCall || num == fieldOccurredAt) && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			if num == fieldCall {
				raw, calls = v, calls+1
			} else if at != nil {
				calls = 2 // repeated: let proto merge it
			} else {
				at = v
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			b = b[m:]
		}
	}
	if calls != 1 {
		ev.Reset()
		if err := proto.Unmarshal(data, ev); err != nil {
			return nil, err
		}
		return proto.Marshal(ev.GetCall())
	}
	ev.Call = &originationv1.Call{}
	if err := proto.Unmarshal(raw, ev.Call); err != nil {
		return nil, err
	}
	if at != nil {
		ev.OccurredAt = &timestamppb.Timestamp{}
		if err := proto.Unmarshal(at, ev.OccurredAt); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// Field numbers of CallEvent that records use.
var (
	eventFields     = (&eventsv1.CallEvent{}).ProtoReflect().Descriptor().Fields()
	fieldSequence   = eventFields.ByName("sequence").Number()
	fieldType       = eventFields.ByName("type").Number()
	fieldOccurredAt = eventFields.ByName("occurred_at").Number()
	fieldCall       = eventFields.ByName("call").Number()
)

// finalSubject reports whether a subject is a final event's,
// calls.<account>.<call>.<event>.
func finalSubject(s string) bool {
	i := strings.LastIndexByte(s, '.')
	switch s[i+1:] {
	case "call_completed", "call_failed", "call_canceled":
		return true
	}
	return false
}
