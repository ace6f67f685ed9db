package dialer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

func apiServer(t *testing.T) *Server {
	t.Helper()
	db := storetest.NewDB(t)
	if err := store.Migrate(context.Background(), db, "dialer", Migrations()); err != nil {
		t.Fatal(err)
	}
	return &Server{DB: db}
}

func tsOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func asAccount(id string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, id))
}

// addRecords puts a READY list of n records into a campaign (the import has
// its own tests).
func addRecords(t *testing.T, db *pgxpool.Pool, campaign, account string, n int) string {
	t.Helper()
	ctx := context.Background()
	list := ids.NewV4()
	if _, err := db.Exec(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, columns, status, records)
		VALUES ($1, $2, $3, 'test', '{TelNumber,Name}', $4, $5)`, list, campaign, account, int16(dialerv1.ListStatus_LIST_STATUS_READY), n); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.Exec(ctx, `INSERT INTO dialer.records (campaign_id, list_id, line, raw, numbers, fields)
			VALUES ($1, $2, $3, $4, $5, $6)`, campaign, list, i+2, fmt.Sprintf("+1555123%04d,n%d", i, i),
			[]string{fmt.Sprintf("+1555123%04d", i)}, map[string]string{"Name": fmt.Sprint("n", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return list
}

func TestDialerCampaignLifecycle(t *testing.T) {
	t.Parallel()
	s := apiServer(t)
	ctx := asAccount("acct-d")
	created, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: &dialerv1.Campaign{
		Name: "Renewals", DefaultCountry: "br", CallerIdNumber: "11 2345 6789", DialAttempts: 3}})
	if err != nil {
		t.Fatal(err)
	}
	c := created.GetCampaign()
	if c.GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED || c.GetDefaultCountry() != "BR" || c.GetCallerIdNumber() != "+551123456789" {
		t.Fatalf("created %v", c)
	}
	// Not startable without records.
	_, err = s.StartCampaign(ctx, &dialerv1.StartCampaignRequest{Id: c.GetId()})
	wantStatus(t, err, codes.FailedPrecondition, "NO_RECORDS")
	addRecords(t, s.DB, c.GetId(), "acct-d", 3)

	// Every transition the spec allows, and the ones it does not.
	refused := func(op string, f func() error) {
		t.Helper()
		if err := f(); err == nil {
			t.Fatalf("%s allowed", op)
		} else {
			wantStatus(t, err, codes.FailedPrecondition, "INVALID_TRANSITION")
		}
	}
	id := &dialerv1.PauseCampaignRequest{Id: c.GetId()}
	refused("pause CREATED", func() error { _, err := s.PauseCampaign(ctx, id); return err })
	refused("resume CREATED", func() error {
		_, err := s.ResumeCampaign(ctx, &dialerv1.ResumeCampaignRequest{Id: c.GetId()})
		return err
	})
	refused("cancel CREATED", func() error {
		_, err := s.CancelCampaign(ctx, &dialerv1.CancelCampaignRequest{Id: c.GetId()})
		return err
	})
	started, err := s.StartCampaign(ctx, &dialerv1.StartCampaignRequest{Id: c.GetId()})
	if err != nil || started.GetCampaign().GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING || started.GetCampaign().GetProgress().GetRecords() != 3 {
		t.Fatalf("start: %v %v", started, err)
	}
	refused("start RUNNING", func() error {
		_, err := s.StartCampaign(ctx, &dialerv1.StartCampaignRequest{Id: c.GetId()})
		return err
	})
	_, err = s.UpdateCampaign(ctx, &dialerv1.UpdateCampaignRequest{Campaign: &dialerv1.Campaign{Id: c.GetId(), DialAttempts: 5},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dial_attempts"}}})
	wantStatus(t, err, codes.FailedPrecondition, "CAMPAIGN_NOT_EDITABLE")
	_, err = s.DeleteCampaign(ctx, &dialerv1.DeleteCampaignRequest{Id: c.GetId()})
	wantStatus(t, err, codes.FailedPrecondition, "INVALID_TRANSITION")
	if p, err := s.PauseCampaign(ctx, id); err != nil || p.GetCampaign().GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED {
		t.Fatalf("pause: %v %v", p, err)
	}
	if r, err := s.ResumeCampaign(ctx, &dialerv1.ResumeCampaignRequest{Id: c.GetId()}); err != nil || r.GetCampaign().GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING {
		t.Fatalf("resume: %v %v", r, err)
	}
	// A record scheduled for later becomes "rescheduled" when cancelled.
	if _, err := s.DB.Exec(context.Background(), `UPDATE dialer.records SET schedule_at = now() + interval '1 day' WHERE campaign_id = $1 AND line = 2`, c.GetId()); err != nil {
		t.Fatal(err)
	}
	cancelled, err := s.CancelCampaign(ctx, &dialerv1.CancelCampaignRequest{Id: c.GetId()})
	if err != nil || cancelled.GetCampaign().GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_CANCELLED || cancelled.GetCampaign().GetFinishedAt() == nil {
		t.Fatalf("cancel: %v %v", cancelled, err)
	}
	rep, err := s.GetReport(ctx, &dialerv1.GetReportRequest{Id: c.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rep.GetByStatus() {
		got[r.GetType()] = r.GetTotal()
	}
	if got[StatusRescheduled] != 1 || got[StatusReady] != 2 || rep.GetTotal() != 3 {
		t.Fatalf("report by status %v", got)
	}
	_, err = s.UpdateCampaign(ctx, &dialerv1.UpdateCampaignRequest{Campaign: &dialerv1.Campaign{Id: c.GetId(), DialAttempts: 5}})
	wantStatus(t, err, codes.FailedPrecondition, "CAMPAIGN_NOT_EDITABLE")

	// A cancelled campaign is started again: a new run, every record ready.
	if _, err := s.DB.Exec(context.Background(), `UPDATE dialer.records SET status = 'busy', final = true, tries = 3 WHERE campaign_id = $1 AND line = 3`, c.GetId()); err != nil {
		t.Fatal(err)
	}
	again, err := s.StartCampaign(ctx, &dialerv1.StartCampaignRequest{Id: c.GetId()})
	if err != nil || again.GetCampaign().GetStatus() != dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING || again.GetCampaign().GetProgress().GetFinal() != 0 {
		t.Fatalf("restart: %v %v", again, err)
	}
	var run, tries int
	var st string
	if err := s.DB.QueryRow(context.Background(), `SELECT r.run, r.tries, r.status FROM dialer.records r WHERE campaign_id = $1 AND line = 3`, c.GetId()).Scan(&run, &tries, &st); err != nil {
		t.Fatal(err)
	}
	if run != 2 || tries != 0 || st != StatusReady {
		t.Fatalf("after the restart the record is run %d, %d tries, %s", run, tries, st)
	}
	// FINISHED (as the engine sets it) is editable and startable.
	if _, err := s.DB.Exec(context.Background(), `UPDATE dialer.campaigns SET status = $2 WHERE id = $1`, c.GetId(), int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)); err != nil {
		t.Fatal(err)
	}
	up, err := s.UpdateCampaign(ctx, &dialerv1.UpdateCampaignRequest{Campaign: &dialerv1.Campaign{Id: c.GetId(), DialAttempts: 5, Name: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"dial_attempts", "status"}}})
	if err != nil || up.GetCampaign().GetDialAttempts() != 5 || up.GetCampaign().GetName() != "Renewals" || up.GetCampaign().GetDefaultCountry() != "BR" {
		t.Fatalf("update a finished campaign: %v %v", up, err)
	}
	if _, err := s.DeleteCampaign(ctx, &dialerv1.DeleteCampaignRequest{Id: c.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCampaign(ctx, &dialerv1.GetCampaignRequest{Id: c.GetId()})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
}

func TestDialerCampaignValidationAndIsolation(t *testing.T) {
	t.Parallel()
	s := apiServer(t)
	ctx := asAccount("acct-v")
	for name, c := range map[string]*dialerv1.Campaign{
		"no name":        {},
		"bad country":    {Name: "x", DefaultCountry: "XX"},
		"bad caller":     {Name: "x", CallerIdNumber: "abc"},
		"attempts":       {Name: "x", DialAttempts: 21},
		"timeout":        {Name: "x", DialTimeoutMs: 10},
		"retry":          {Name: "x", RetryIntervals: &dialerv1.RetryIntervals{BusyS: -1}},
		"hours":          {Name: "x", CallingHours: &dialerv1.CallingHours{Windows: []*dialerv1.CallingWindow{{Days: []int32{1}, Start: "21:00", End: "08:00"}}}},
		"day":            {Name: "x", CallingHours: &dialerv1.CallingHours{Windows: []*dialerv1.CallingWindow{{Days: []int32{7}, Start: "08:00", End: "21:00"}}}},
		"announcement":   {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "has spaces.wav"}},
		"endpoint":       {Name: "x", OnAnswer: &dialerv1.OnAnswer{EndpointId: "1101"}},
		"dates":          {Name: "x", StartTime: tsOf(time.Now().Add(time.Hour)), EndTime: tsOf(time.Now())},
		"dial string":    {Name: "x", CallerIdName: "a,b"},
		"max concurrent": {Name: "x", MaxConcurrentCalls: -1},
		"options without announcement": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Options: []*dialerv1.BlastOption{
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}}}},
		"option digit": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", Options: []*dialerv1.BlastOption{
			{Digit: "12", Action: dialerv1.BlastAction_BLAST_ACTION_END}}}},
		"option twice": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", Options: []*dialerv1.BlastOption{
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_END}, {Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}}}},
		"option action": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", Options: []*dialerv1.BlastOption{{Digit: "1"}}}},
		"connect without endpoint": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", Options: []*dialerv1.BlastOption{
			{Digit: "1", Action: dialerv1.BlastAction_BLAST_ACTION_CONNECT}}}},
		"option tries": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", OptionTries: 6, Options: []*dialerv1.BlastOption{
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}}}},
		"option timeout": {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", OptionTimeoutMs: 500, Options: []*dialerv1.BlastOption{
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}}}},
		"tries without options":     {Name: "x", OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", OptionTries: 2}},
		"message without detection": {Name: "x", OnAnswer: &dialerv1.OnAnswer{MachineMessage: "m.wav"}},
		"bad machine message":       {Name: "x", OnAnswer: &dialerv1.OnAnswer{DetectMachine: true, MachineMessage: "a;b.wav"}},
	} {
		if _, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: c}); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
		}
	}
	blast := &dialerv1.Campaign{Name: "Blast", OnAnswer: &dialerv1.OnAnswer{Announcement: "/audio/offer.wav", OptionTries: 2, OptionTimeoutMs: 3000,
		DetectMachine: true, MachineMessage: "/audio/sorry.wav", Options: []*dialerv1.BlastOption{
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}, {Digit: "#", Action: dialerv1.BlastAction_BLAST_ACTION_END}}}}
	if b, err := s.CreateCampaign(asAccount("acct-blast"), &dialerv1.CreateCampaignRequest{Campaign: blast}); err != nil || len(b.GetCampaign().GetOnAnswer().GetOptions()) != 2 ||
		b.GetCampaign().GetOnAnswer().GetMachineMessage() != "/audio/sorry.wav" {
		t.Fatalf("a BLAST campaign: %v %v", b, err)
	}
	ok := &dialerv1.Campaign{Name: "Fine", CallingHours: &dialerv1.CallingHours{Windows: []*dialerv1.CallingWindow{{Days: []int32{1, 2, 3, 4, 5}, Start: "09:00", End: "24:00"}}}}
	c, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: ok})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: ok})
	wantStatus(t, err, codes.AlreadyExists, "CAMPAIGN_EXISTS")
	_, err = s.GetCampaign(asAccount("acct-other"), &dialerv1.GetCampaignRequest{Id: c.GetCampaign().GetId()})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
	_, err = s.StartCampaign(asAccount("acct-other"), &dialerv1.StartCampaignRequest{Id: c.GetCampaign().GetId()})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
	_, err = s.GetCampaign(context.Background(), &dialerv1.GetCampaignRequest{Id: c.GetCampaign().GetId()})
	wantStatus(t, err, codes.Unauthenticated, "UNAUTHENTICATED")

	// Listing: newest first, by pages, by status.
	for i := range 4 {
		if _, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: &dialerv1.Campaign{Name: fmt.Sprint("c", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	tok := ""
	for {
		page, err := s.ListCampaigns(ctx, &dialerv1.ListCampaignsRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.GetCampaigns() {
			names = append(names, c.GetName())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if fmt.Sprint(names) != "[c3 c2 c1 c0 Fine]" {
		t.Fatalf("listed %v", names)
	}
	running, err := s.ListCampaigns(ctx, &dialerv1.ListCampaignsRequest{Status: dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING})
	if err != nil || len(running.GetCampaigns()) != 0 {
		t.Fatalf("running: %v %v", running, err)
	}
}

func TestDialerReportAndRecords(t *testing.T) {
	t.Parallel()
	s := apiServer(t)
	ctx := asAccount("acct-r")
	c, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: &dialerv1.Campaign{Name: "Report"}})
	if err != nil {
		t.Fatal(err)
	}
	id := c.GetCampaign().GetId()
	addRecords(t, s.DB, id, "acct-r", 8)
	// A known outcome per record: 3 answered (one tagged "1"), 2 busy after
	// 3 tries, 1 noanswer, 1 dnc, 1 still ready.
	for line, set := range map[int]string{
		2: "status = 'answered', final = true, tries = 1, tags = '{1}', destination = 'QUEUE_ANSWER'",
		3: "status = 'answered', final = true, tries = 2, destination = 'QUEUE_TIMEOUT'",
		4: "status = 'answered', final = true, tries = 1, destination = 'QUEUE_ANSWER'", 5: "status = 'busy', final = true, tries = 3",
		6: "status = 'busy', final = true, tries = 3", 7: "status = 'noanswer', final = true, tries = 2", 8: "status = 'dnc', final = true",
	} {
		if _, err := s.DB.Exec(context.Background(), `UPDATE dialer.records SET `+set+` WHERE campaign_id = $1 AND line = $2`, id, line); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.GetReport(ctx, &dialerv1.GetReportRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(rs []*dialerv1.ReportRow) string {
		out := ""
		for _, r := range rs {
			out += fmt.Sprintf("%s=%d(%.1f) ", r.GetType(), r.GetTotal(), r.GetPercentage())
		}
		return out
	}
	if got := rows(rep.GetByStatus()); got != "answered=3(37.5) busy=2(25.0) dnc=1(12.5) noanswer=1(12.5) ready=1(12.5) " {
		t.Fatalf("by status: %s", got)
	}
	if got := rows(rep.GetByAttempts()); got != "1=2(25.0) 0=2(25.0) 3=2(25.0) 2=2(25.0) " && got != "0=2(25.0) 1=2(25.0) 2=2(25.0) 3=2(25.0) " {
		t.Fatalf("by attempts: %s", got)
	}
	if got := rows(rep.GetByTag()); got != "1=1(12.5) " {
		t.Fatalf("by tag: %s", got)
	}
	// The records nobody answered are at no destination.
	if got := rows(rep.GetByDestination()); got != "QUEUE_ANSWER=2(25.0) QUEUE_TIMEOUT=1(12.5) " {
		t.Fatalf("by destination: %s", got)
	}
	if rep.GetCampaign().GetProgress().GetFinal() != 7 || rep.GetCampaign().GetProgress().GetAnswered() != 3 {
		t.Fatalf("progress %v", rep.GetCampaign().GetProgress())
	}
	var all []*dialerv1.Record
	tok := ""
	for {
		page, err := s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.GetRecords()...)
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(all) != 8 || all[0].GetLine() != 2 || all[0].GetStatus() != "answered" || all[0].GetFields()["Name"] != "n0" || all[7].GetStatus() != "ready" {
		t.Fatalf("records %v", all)
	}
	busy, err := s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, Status: "busy"})
	if err != nil || len(busy.GetRecords()) != 2 || busy.GetRecords()[0].GetTries() != 3 {
		t.Fatalf("busy records %v %v", busy, err)
	}
	timedOut, err := s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, Destination: DestQueueTimeout})
	if err != nil || len(timedOut.GetRecords()) != 1 || timedOut.GetRecords()[0].GetLine() != 3 || timedOut.GetRecords()[0].GetDestination() != DestQueueTimeout {
		t.Fatalf("records timed out in the queue %v %v", timedOut, err)
	}
	_, err = s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, PageToken: "x"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
	_, err = s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, Destination: "QUEUE"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_DESTINATION")
	_, err = s.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: id, Status: "BUSY"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_STATUS")
}
