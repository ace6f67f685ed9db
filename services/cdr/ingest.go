package cdr

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
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
		ev.Reset()
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			// Retrying cannot fix it; the rest of the batch must not wait.
			in.Log.Error("dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
			in.m.droppedEvent()
			continue
		}
		raw, err := proto.Marshal(ev.GetCall())
		if err != nil {
			return natsbus.Permanent(fmt.Errorf("encode call %s: %w", ev.GetCallId(), err))
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
