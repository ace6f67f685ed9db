package dialer

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/csvsafe"
)

// readExport reads an export stream to its end: the file and the size of
// each message.
func readExport(recv func() ([]byte, error)) ([]byte, []int, error) {
	var data []byte
	var sizes []int
	for {
		chunk, err := recv()
		if errors.Is(err, io.EOF) {
			return data, sizes, nil
		}
		if err != nil {
			return data, sizes, err
		}
		data = append(data, chunk...)
		sizes = append(sizes, len(chunk))
	}
}

func (e *listEnv) exportRecords(t testing.TB, account string, req *dialerv1.ExportRecordsRequest) ([]byte, []int, error) {
	t.Helper()
	stream, err := e.client.ExportRecords(callerCtx(context.Background(), account), req)
	if err != nil {
		t.Fatal(err)
	}
	return readExport(func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
}

func (e *listEnv) exportReport(t testing.TB, account string, req *dialerv1.ExportReportRequest) ([]byte, error) {
	t.Helper()
	stream, err := e.client.ExportReport(callerCtx(context.Background(), account), req)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := readExport(func() ([]byte, error) {
		msg, err := stream.Recv()
		return msg.GetChunk(), err
	})
	return data, err
}

// exportCampaign is a campaign with two imported lists of different
// headers and four records in known states (see TestExportRecordsCSV).
func exportCampaign(t *testing.T, e *listEnv, account string) string {
	t.Helper()
	ctx := context.Background()
	camp := e.campaign(t, account, "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING, 1)
	first := "Phone,Name,Note,*Schedule*\n" +
		"4155550100|4155550101,Ann,\"a, b\",\n" + // line 2
		"4155550102,\"Bob \"\"Jr\"\"\",\"two\nlines\",\n" + // lines 3-4
		"4155550103,\"=HYPERLINK(\"\"http://x\"\")\",@SUM(A1),\n" // line 5
	second := "Tel,City,Note\n" +
		"4155550104,\"Rio, RJ\",-5\n" // line 2
	for _, l := range []struct{ name, csv string }{{"=cmd list", first}, {"second", second}} {
		resp, err := e.importCSV(ctx, account, &dialerv1.ImportListRequest{CampaignId: camp, Name: l.name}, []byte(l.csv), 1<<20)
		if err != nil || resp.GetErrorCount() != 0 {
			t.Fatalf("import %s: %v %v", l.name, resp, err)
		}
	}
	for _, u := range []struct {
		list string
		line int
		set  string
	}{
		{"=cmd list", 2, `status = 'answered', final = true, tries = 2, call_id = 'call-a', last_attempt_at = '2026-03-04T15:00:00Z',
			last_duration_s = 42, tags = '{1,9}', destination = 'QUEUE_ANSWER'`},
		{"=cmd list", 3, `status = 'busy', final = false, tries = 1, call_id = 'call-b', last_attempt_at = '2026-03-04T15:30:00Z',
			next_at = '2026-03-04T16:00:00Z', tags = '{1}'`},
		{"second", 2, `status = 'busy', final = true, tries = 3, call_id = 'call-d', last_attempt_at = '2026-03-05T01:02:03Z',
			next_at = '2026-03-05T02:00:00Z', tags = '{@x,1,9}'`},
	} {
		tag, err := e.db.Exec(ctx, `UPDATE dialer.records r SET `+u.set+` FROM dialer.lists l
			WHERE l.id = r.list_id AND l.campaign_id = $1 AND l.name = $2 AND r.line = $3`, camp, u.list, u.line)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("update %s line %d: %v %v", u.list, u.line, tag, err)
		}
	}
	return camp
}

// The detailed report as CSV: exact rows, times in the asked zone, the
// lists' fields as columns in first-seen order, customer text quoted and
// defused, the status filter.
func TestExportRecordsCSV(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	camp := exportCampaign(t, e, "acc-x")

	const header = "record_id,list,line,numbers,tries,status,final,last_call_id,last_attempt_at,last_duration_s,next_at,tags,destination,Name,Note,City\n"
	rows := []string{
		"1,'=cmd list,2,+14155550100|+14155550101,2,answered,true,call-a,2026-03-04T09:00:00-06:00,42,,1|9,QUEUE_ANSWER,Ann,\"a, b\",\n",
		"2,'=cmd list,3,+14155550102,1,busy,false,call-b,2026-03-04T09:30:00-06:00,0,2026-03-04T10:00:00-06:00,1,,\"Bob \"\"Jr\"\"\",\"two\nlines\",\n",
		"3,'=cmd list,5,+14155550103,0,ready,false,,,,,,,\"'=HYPERLINK(\"\"http://x\"\")\",'@SUM(A1),\n",
		"4,second,2,+14155550104,3,busy,true,call-d,2026-03-04T19:02:03-06:00,0,,'@x|1|9,,,-5,\"Rio, RJ\"\n",
	}
	tests := []struct {
		name string
		req  *dialerv1.ExportRecordsRequest
		want string
	}{
		{"all, Mexico City time", &dialerv1.ExportRecordsRequest{CampaignId: camp, TimeZone: "America/Mexico_City"}, header + strings.Join(rows, "")},
		{"busy only", &dialerv1.ExportRecordsRequest{CampaignId: camp, Status: "busy", TimeZone: "America/Mexico_City"}, header + rows[1] + rows[3]},
		{"none in the status", &dialerv1.ExportRecordsRequest{CampaignId: camp, Status: "dnc"}, header},
		{"UTC by default", &dialerv1.ExportRecordsRequest{CampaignId: camp, Status: "answered"},
			header + "1,'=cmd list,2,+14155550100|+14155550101,2,answered,true,call-a,2026-03-04T15:00:00Z,42,,1|9,QUEUE_ANSWER,Ann,\"a, b\",\n"},
		{"by destination", &dialerv1.ExportRecordsRequest{CampaignId: camp, Destination: DestQueueAnswer, TimeZone: "America/Mexico_City"}, header + rows[0]},
		{"none at the destination", &dialerv1.ExportRecordsRequest{CampaignId: camp, Destination: DestInBusy}, header},
	}
	// Lists of numbers alone: no field columns.
	bare := e.campaign(t, "acc-x", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	if _, err := e.importCSV(context.Background(), "acc-x", &dialerv1.ImportListRequest{CampaignId: bare, Name: "bare"},
		[]byte("Phone,*Schedule*\n4155550109,\n"), 1<<20); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name string
		req  *dialerv1.ExportRecordsRequest
		want string
	}{"no fields", &dialerv1.ExportRecordsRequest{CampaignId: bare},
		"record_id,list,line,numbers,tries,status,final,last_call_id,last_attempt_at,last_duration_s,next_at,tags,destination\n" +
			"5,bare,2,+14155550109,0,ready,false,,,,,,\n"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := e.exportRecords(t, "acc-x", tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("file:\n%s\nwant:\n%s", got, tc.want)
			}
			if _, err := csv.NewReader(strings.NewReader(string(got))).ReadAll(); err != nil {
				t.Fatalf("not CSV a reader reads: %v", err)
			}
		})
	}
}

// The statistics as CSV: GetReport's groups, in its order, with its
// percentages to two decimals, then the total.
func TestExportReportCSV(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	camp := exportCampaign(t, e, "acc-x")

	got, err := e.exportReport(t, "acc-x", &dialerv1.ExportReportRequest{CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	want := "group,type,total,percentage\n" +
		"status,busy,2,50.00\n" + "status,answered,1,25.00\n" + "status,ready,1,25.00\n" +
		"attempts,0,1,25.00\n" + "attempts,1,1,25.00\n" + "attempts,2,1,25.00\n" + "attempts,3,1,25.00\n" +
		"tag,1,3,75.00\n" + "tag,9,2,50.00\n" + "tag,'@x,1,25.00\n" +
		"destination,QUEUE_ANSWER,1,25.00\n" +
		"total,,4,100.00\n"
	if string(got) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}

	// The same numbers as GetReport, row for row.
	rep, err := e.client.GetReport(callerCtx(context.Background(), "acc-x"), &dialerv1.GetReportRequest{Id: camp})
	if err != nil {
		t.Fatal(err)
	}
	fromAPI := []string{"group,type,total,percentage"}
	for _, g := range []struct {
		name string
		rows []*dialerv1.ReportRow
	}{{"status", rep.GetByStatus()}, {"attempts", rep.GetByAttempts()}, {"tag", rep.GetByTag()}, {"destination", rep.GetByDestination()}} {
		for _, r := range g.rows {
			fromAPI = append(fromAPI, fmt.Sprintf("%s,%s,%d,%.2f", g.name, csvsafe.Cell(r.GetType()), r.GetTotal(), r.GetPercentage()))
		}
	}
	fromAPI = append(fromAPI, fmt.Sprintf("total,,%d,100.00", rep.GetTotal()))
	if string(got) != strings.Join(fromAPI, "\n")+"\n" {
		t.Fatalf("file:\n%s\nGetReport says:\n%s", got, strings.Join(fromAPI, "\n"))
	}

	// A campaign without records.
	empty := e.campaign(t, "acc-x", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	got, err = e.exportReport(t, "acc-x", &dialerv1.ExportReportRequest{CampaignId: empty})
	if err != nil || string(got) != "group,type,total,percentage\ntotal,,0,0.00\n" {
		t.Fatalf("empty report: %q %v", got, err)
	}
}

// Many records, some of them large: every record once, in id order, sent
// in 64 KiB messages, across pages that end at exportPage records or at
// exportBuffer bytes.
func TestExportRecordsPages(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := context.Background()
	camp := e.campaign(t, "acc-p", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	var list string
	if err := e.db.QueryRow(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, columns, status)
		VALUES (gen_random_uuid(), $1, 'acc-p', 'big', '{TelNumber,Blob}', $2) RETURNING id::text`,
		camp, int16(dialerv1.ListStatus_LIST_STATUS_READY)).Scan(&list); err != nil {
		t.Fatal(err)
	}
	// 40 records of 60,000 bytes (2.4 MB: pages cut short by size), then
	// 2.5 pages of small ones.
	const big, small = 40, 2*exportPage + exportPage/2
	if _, err := e.db.Exec(ctx, `INSERT INTO dialer.records (campaign_id, list_id, line, raw, numbers, fields)
		SELECT $1, $2, i + 1, '', ARRAY['+1415555' || lpad(i::text, 6, '0')],
			jsonb_build_object('Blob', CASE WHEN i <= $3 THEN repeat(chr(64 + i % 26 + 1), 60000) ELSE 'b' || i END)
		FROM generate_series(1, $4::int) i`, camp, list, big, big+small); err != nil {
		t.Fatal(err)
	}
	data, sizes, err := e.exportRecords(t, "acc-p", &dialerv1.ExportRecordsRequest{CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	// The header alone first, then whole chunks until the last.
	for i, n := range sizes {
		if i > 0 && i < len(sizes)-1 && n != exportChunk || n > exportChunk || n == 0 {
			t.Fatalf("message %d of %d has %d bytes", i, len(sizes), n)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+big+small {
		t.Fatalf("%d rows, want header + %d", len(recs), big+small)
	}
	if strings.Join(recs[0], ",") != "record_id,list,line,numbers,tries,status,final,last_call_id,last_attempt_at,last_duration_s,next_at,tags,destination,Blob" {
		t.Fatalf("header %q", recs[0])
	}
	for i, r := range recs[1:] {
		n := i + 1
		blob := "b" + strconv.Itoa(n)
		if n <= big {
			blob = strings.Repeat(string(rune(64+n%26+1)), 60000)
		}
		if r[0] != strconv.Itoa(n) || r[2] != strconv.Itoa(n+1) || r[13] != blob {
			t.Fatalf("row %d: id %s line %s blob of %d bytes", n, r[0], r[2], len(r[13]))
		}
	}
}

// Refusals: a bad status or time zone, another account's campaign, no
// account. Errors of a server stream come on the first Recv.
func TestExportRefused(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	camp := e.campaign(t, "acc-a", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	tests := []struct {
		name    string
		account string
		req     *dialerv1.ExportRecordsRequest
		code    codes.Code
		reason  string
	}{
		{"status not a spec name", "acc-a", &dialerv1.ExportRecordsRequest{CampaignId: camp, Status: "BUSY"}, codes.InvalidArgument, "INVALID_STATUS"},
		{"destination not a spec name", "acc-a", &dialerv1.ExportRecordsRequest{CampaignId: camp, Destination: "queue_answer"}, codes.InvalidArgument, "INVALID_DESTINATION"},
		{"unknown time zone", "acc-a", &dialerv1.ExportRecordsRequest{CampaignId: camp, TimeZone: "Mars/Olympus"}, codes.InvalidArgument, "INVALID_TIME_ZONE"},
		{"host's zone", "acc-a", &dialerv1.ExportRecordsRequest{CampaignId: camp, TimeZone: "Local"}, codes.InvalidArgument, "INVALID_TIME_ZONE"},
		{"another account's campaign", "acc-b", &dialerv1.ExportRecordsRequest{CampaignId: camp}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"not a campaign id", "acc-a", &dialerv1.ExportRecordsRequest{CampaignId: "x"}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"no account", "", &dialerv1.ExportRecordsRequest{CampaignId: camp}, codes.Unauthenticated, "UNAUTHENTICATED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, _, err := e.exportRecords(t, tc.account, tc.req)
			if len(data) > 0 {
				t.Fatalf("sent %q before refusing", data)
			}
			wantStatus(t, err, tc.code, tc.reason)
		})
	}
	t.Run("report of another account's campaign", func(t *testing.T) {
		data, err := e.exportReport(t, "acc-b", &dialerv1.ExportReportRequest{CampaignId: camp})
		if len(data) > 0 {
			t.Fatalf("sent %q", data)
		}
		wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
	})
}
