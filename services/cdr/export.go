package cdr

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/csvsafe"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// exportPage is how many records an export reads at a time: the file is
// streamed page by page, so an export of millions of rows holds one page.
const exportPage = 2000

// exportChunk is the size of the messages an export sends.
const exportChunk = 64 << 10

// ExportCdrs streams the records of a query as CSV.
func (s *Server) ExportCdrs(req *cdrv1.ExportCdrsRequest, stream cdrv1.CdrService_ExportCdrsServer) error {
	ctx := stream.Context()
	account, err := accountFrom(ctx)
	if err != nil {
		return err
	}
	loc, err := location(req.GetTimeZone())
	if err != nil {
		return err
	}
	q, err := QueryFrom(account, req.GetFilter(), s.now())
	if err != nil {
		return err
	}
	types, err := s.Store.CommentTypes(ctx, account)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := newCSVWriter(&buf, loc, types)
	flush := func(force bool) error {
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		for buf.Len() >= exportChunk || (force && buf.Len() > 0) {
			n := min(buf.Len(), exportChunk)
			if err := stream.Send(&cdrv1.ExportCdrsResponse{Chunk: buf.Next(n)}); err != nil {
				return err
			}
		}
		return nil
	}
	w.header()
	// The header goes out at once: the caller learns the query is valid
	// before the first page is read.
	if err := flush(true); err != nil {
		return err
	}
	var after *Cursor
	for {
		rows, err := s.Store.List(ctx, q, after, req.GetAscending(), 0, exportPage)
		if err != nil {
			return err
		}
		recs, err := s.records(ctx, account, rows)
		if err != nil {
			return err
		}
		for _, r := range recs {
			w.record(r)
		}
		if err := flush(false); err != nil {
			return err
		}
		if len(rows) < exportPage {
			return flush(true)
		}
		last := rows[len(rows)-1]
		after = &Cursor{CreatedAt: last.CreatedAt, CallID: last.CallID}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// csvWriter renders records as CSV rows.
type csvWriter struct {
	*csv.Writer
	loc   *time.Location
	types []*cdrv1.CommentType
	row   []string
}

func newCSVWriter(b *bytes.Buffer, loc *time.Location, types []*cdrv1.CommentType) *csvWriter {
	return &csvWriter{Writer: csv.NewWriter(b), loc: loc, types: types}
}

// Columns of the export, before the legs' and the comments'.
var callColumns = []string{"call_id", "status", "source", "campaign_id", "mode", "created_at", "answered_at",
	"bridged_at", "ended_at", "duration_s", "billsec", "failed_leg", "failure_reason", "hangup_cause", "cost",
	"access_fee", "currency", "outcome", "attempts", "visitor_leg"}

// Columns of each leg, prefixed with first_ and second_.
var legColumns = []string{"address", "number", "endpoint_id", "endpoint_name", "caller_id_number", "status",
	"hangup_cause", "sip_status", "dialed_at", "ringing_at", "answered_at", "ended_at", "billsec", "cost",
	"rate_per_minute", "connection_fee", "route_pattern", "route_name", "country", "region", "carrier", "line_type"}

// header writes the column names: the call's, each leg's, the custom
// variables (one JSON object), then one column per comment field, named
// "comment:<type name>:<field name>".
func (w *csvWriter) header() {
	cols := append([]string(nil), callColumns...)
	for _, leg := range []string{"first_", "second_"} {
		for _, c := range legColumns {
			cols = append(cols, leg+c)
		}
	}
	cols = append(cols, "variables")
	for _, t := range w.types {
		for _, f := range t.GetFields() {
			cols = append(cols, "comment:"+t.GetName()+":"+f.GetName())
		}
	}
	_ = w.Write(csvsafe.Cells(cols))
}

func (w *csvWriter) time(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().In(w.loc).Format(time.DateTime)
}

func enumName(name, prefix string) string {
	if strings.HasSuffix(name, "_UNSPECIFIED") {
		return ""
	}
	return strings.TrimPrefix(name, prefix)
}

func money(m int64) string { return tariffcsv.FormatMicros(m) }

func (w *csvWriter) record(r *cdrv1.Cdr) {
	c := r.GetCall()
	row := w.row[:0]
	row = append(row, c.GetId(), enumName(c.GetStatus().String(), "CALL_STATUS_"), enumName(c.GetSource().String(), "CALL_SOURCE_"),
		csvsafe.Cell(c.GetCampaignId()), enumName(c.GetMode().String(), "CALL_MODE_"),
		w.time(c.GetCreatedAt()), w.time(c.GetAnsweredAt()), w.time(c.GetBridgedAt()), w.time(c.GetEndedAt()),
		strconv.Itoa(int(c.GetDurationS())), strconv.Itoa(int(c.GetBillsec())),
		enumName(c.GetFailedLeg().String(), "LEG_ROLE_"), enumName(c.GetFailureReason().String(), "FAILURE_REASON_"),
		c.GetHangupCause(), money(r.GetCostMicros()), money(r.GetAccessFeeMicros()), r.GetCurrency(),
		c.GetOutcome(), strconv.Itoa(max(int(c.GetAttempt()), 1)), enumName(c.GetVisitorLeg().String(), "LEG_ROLE_"))
	for _, l := range []*originationv1.Leg{c.GetFirst(), c.GetSecond()} {
		rate, dir := l.GetRate(), l.GetDirection()
		perMin, fee := "", ""
		if rate != nil {
			perMin, fee = money(rate.GetRatePerMinuteMicros()), money(rate.GetConnectionFeeMicros())
		}
		sip := ""
		if s := l.GetSipStatus(); s != 0 {
			sip = strconv.Itoa(int(s))
		}
		row = append(row, csvsafe.Cell(l.GetAddress()), legNumber(l), l.GetParty().GetEndpointId(), csvsafe.Cell(l.GetEndpointName()),
			l.GetCallerIdNumber(), enumName(l.GetStatus().String(), "LEG_STATUS_"), l.GetHangupCause(), sip,
			w.time(l.GetStartedAt()), w.time(l.GetRingingAt()), w.time(l.GetAnsweredAt()), w.time(l.GetEndedAt()),
			strconv.Itoa(int(l.GetBillsec())), money(l.GetCostMicros()), perMin, fee,
			rate.GetPrefix(), csvsafe.Cell(rate.GetDestination()), dir.GetCountry(), csvsafe.Cell(dir.GetRegion()), csvsafe.Cell(dir.GetCarrier()),
			enumName(dir.GetLineType().String(), "LINE_TYPE_"))
	}
	vars := ""
	if len(c.GetVariables()) > 0 {
		b, _ := json.Marshal(c.GetVariables()) // keys sorted: stable output
		vars = string(b)
	}
	row = append(row, csvsafe.Cell(vars))
	for _, t := range w.types {
		for _, f := range t.GetFields() {
			row = append(row, csvsafe.Cell(commentValues(r.GetComments(), t.GetId(), f.GetName())))
		}
	}
	w.row = row
	_ = w.Write(row)
}

// commentValues joins the values one field takes in a call's comments of
// one type, oldest first, with " | ".
func commentValues(cs []*cdrv1.Comment, typeID, field string) string {
	var vals []string
	for _, cm := range cs {
		if cm.GetTypeId() != typeID {
			continue
		}
		v, ok := cm.GetValues().GetFields()[field]
		if !ok {
			continue
		}
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			vals = append(vals, k.StringValue)
		case *structpb.Value_NumberValue:
			vals = append(vals, strconv.FormatFloat(k.NumberValue, 'f', -1, 64))
		case *structpb.Value_BoolValue:
			vals = append(vals, strconv.FormatBool(k.BoolValue))
		}
	}
	return strings.Join(vals, " | ")
}
