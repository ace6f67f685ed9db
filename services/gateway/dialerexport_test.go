package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// newDialerEnv is newEnv with the real dialer API (its own database)
// behind /v1/dialer.
func newDialerEnv(t *testing.T) (*env, *dialer.Server, dialerv1.DialerServiceClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := storetest.NewDB(t)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	ddb := storetest.NewDB(t)
	if err := store.Migrate(ctx, ddb, "dialer", dialer.Migrations()); err != nil {
		t.Fatal(err)
	}
	srv := &dialer.Server{DB: ddb, Log: slog.New(slog.DiscardHandler)}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	dialerv1.RegisterDialerServiceServer(gs, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-served
	})
	conn, err := grpc.NewClient("passthrough:///dialer",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	log := testLogger(t)
	st := NewAccountStore(db, log, StoreOptions{})
	t.Cleanup(st.Close)
	fake, oconn := startFake(t)
	// A request's time is too short for any export: exports have the
	// import's (5 minutes), which the test proves by succeeding.
	cfg := Config{OperatorToken: testOperatorToken, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, RequestTimeout: time.Nanosecond}
	h, err := NewHandler(cfg, log, st, NewAccountServer(st, log),
		Backends{Origination: oconn, Rating: oconn, CDR: oconn, Webhook: oconn, Dialer: conn})
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, fake: fake, h: h, cfg: cfg}, srv, dialerv1.NewDialerServiceClient(conn)
}

// The CSV routes stream the dialer's exports as downloads; the dialer's
// refusals become the REST JSON errors.
func TestDialerExportRoutes(t *testing.T) {
	t.Parallel()
	e, srv, client := newDialerEnv(t)
	account, key := e.newAccount(t, "acme")
	_, otherKey := e.newAccount(t, "other")
	as := metadata.NewIncomingContext(context.Background(), metadata.Pairs(dialer.AccountHeader, account))
	c, err := srv.CreateCampaign(as, &dialerv1.CreateCampaignRequest{Campaign: &dialerv1.Campaign{Name: "Exported"}})
	if err != nil {
		t.Fatal(err)
	}
	camp := c.GetCampaign().GetId()
	// 3,000 records (a file of several 64 KiB messages), one of them busy.
	ctx := context.Background()
	var list string
	if err := srv.DB.QueryRow(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, columns, status, records)
		VALUES (gen_random_uuid(), $1, $2, 'crm', '{TelNumber,Name}', $3, 3000) RETURNING id::text`,
		camp, account, int16(dialerv1.ListStatus_LIST_STATUS_READY)).Scan(&list); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DB.Exec(ctx, `INSERT INTO dialer.records (campaign_id, list_id, line, raw, numbers, fields)
		SELECT $1, $2, i + 1, '', ARRAY['+1415555' || lpad(i::text, 4, '0')], jsonb_build_object('Name', 'Customer number ' || i)
		FROM generate_series(1, 3000) i`, camp, list); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.DB.Exec(ctx, `UPDATE dialer.records SET status = 'busy', tries = 1, call_id = 'call-7', last_attempt_at = '2026-03-04T15:00:00Z',
		next_at = '2026-03-04T15:05:00Z' WHERE campaign_id = $1 AND line = 8`, camp); err != nil {
		t.Fatal(err)
	}

	wantCSV := func(t *testing.T, r resp, filename string) {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := r.header.Get("Content-Type"); got != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", got)
		}
		if got, want := r.header.Get("Content-Disposition"), `attachment; filename="`+filename+`"`; got != want {
			t.Errorf("Content-Disposition %q, want %q", got, want)
		}
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q", got)
		}
	}
	recordsPath := "/v1/dialer/campaigns/" + camp + "/records:export"

	t.Run("records, filtered, in a time zone", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: recordsPath + "?status=busy&timeZone=America/Mexico_City", key: key})
		wantCSV(t, r, "campaign-"+camp+"-records.csv")
		want := "record_id,list,line,numbers,tries,status,final,last_call_id,last_attempt_at,last_duration_s,next_at,tags,destination,Name\n" +
			"7,crm,8,+14155550007,1,busy,false,call-7,2026-03-04T09:00:00-06:00,0,2026-03-04T09:05:00-06:00,,,Customer number 7\n"
		if string(r.body) != want {
			t.Fatalf("body:\n%s\nwant:\n%s", r.body, want)
		}
	})

	t.Run("records, all: the gRPC export's bytes", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: recordsPath, key: key})
		wantCSV(t, r, "campaign-"+camp+"-records.csv")
		stream, err := client.ExportRecords(metadata.AppendToOutgoingContext(ctx, dialer.AccountHeader, account),
			&dialerv1.ExportRecordsRequest{CampaignId: camp})
		if err != nil {
			t.Fatal(err)
		}
		var direct []byte
		messages := 0
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			direct = append(direct, msg.GetChunk()...)
			messages++
		}
		if messages < 3 || !bytes.Equal(r.body, direct) {
			t.Fatalf("%d bytes over HTTP, %d in %d messages over gRPC", len(r.body), len(direct), messages)
		}
		if n := bytes.Count(r.body, []byte("\n")); n != 3001 {
			t.Fatalf("%d lines, want header + 3000", n)
		}
	})

	t.Run("report", func(t *testing.T) {
		r := e.do(t, req{method: http.MethodGet, path: "/v1/dialer/campaigns/" + camp + "/report:export", key: key})
		wantCSV(t, r, "campaign-"+camp+"-report.csv")
		want := "group,type,total,percentage\n" +
			"status,ready,2999,99.97\nstatus,busy,1,0.03\n" +
			"attempts,0,2999,99.97\nattempts,1,1,0.03\n" +
			"total,,3000,100.00\n"
		if string(r.body) != want {
			t.Fatalf("body:\n%s\nwant:\n%s", r.body, want)
		}
	})

	for _, tc := range []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"unknown time zone", recordsPath + "?timeZone=Mars/Olympus", key, http.StatusBadRequest, "INVALID_TIME_ZONE"},
		{"status not a spec name", recordsPath + "?status=BUSY", key, http.StatusBadRequest, "INVALID_STATUS"},
		{"another account's campaign", recordsPath, otherKey, http.StatusNotFound, "CAMPAIGN_NOT_FOUND"},
		{"another account's report", "/v1/dialer/campaigns/" + camp + "/report:export", otherKey, http.StatusNotFound, "CAMPAIGN_NOT_FOUND"},
		{"no key", recordsPath, "", http.StatusUnauthorized, ReasonUnauthenticated},
		{"operator", recordsPath, testOperatorToken, http.StatusForbidden, ReasonPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, req{method: http.MethodGet, path: tc.path, key: tc.key})
			r.wantError(t, tc.status, tc.code)
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" || r.header.Get("Content-Disposition") != "" {
				t.Fatalf("an error served as %q, %q", ct, r.header.Get("Content-Disposition"))
			}
		})
	}
}
