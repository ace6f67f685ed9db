package dialer

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/csvsafe"
)

// exportBenchRecords is the size of the campaign BenchmarkExportRecords1M
// exports.
const exportBenchRecords = 1_000_000

// BenchmarkExportRecords1M exports a 1,000,000-record campaign (two
// numbers and three fields a record, a run half done: statuses, tries,
// last attempts and tags) through the gRPC method on a loopback server,
// reporting rows/s and the peak heap of the process while it runs (the
// server and the client: the export holds a page, whatever the campaign's
// size). The baseline in the same run is what a client of the API had
// before: ListRecords pages of 1,000 turned into the same CSV on the
// client. Run it alone (it is not part of make test or make bench):
//
//	go test -run '^$' -bench ExportRecords1M -benchtime 1x -count 3 -timeout 30m ./dialer/
func BenchmarkExportRecords1M(b *testing.B) {
	e := newListEnv(b)
	ctx := context.Background()
	const account = "acc-bench"
	camp := exportBenchCampaign(b, e, account, exportBenchRecords)
	caller := callerCtx(ctx, account)

	b.Run("export", func(b *testing.B) {
		peak, stop := heapPeak()
		var rows, size int64
		for b.Loop() {
			stream, err := e.client.ExportRecords(caller, &dialerv1.ExportRecordsRequest{CampaignId: camp, TimeZone: "America/Sao_Paulo"})
			if err != nil {
				b.Fatal(err)
			}
			for {
				msg, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				size += int64(len(msg.GetChunk()))
				rows += int64(bytes.Count(msg.GetChunk(), []byte{'\n'}))
			}
		}
		stop()
		rows -= int64(b.N) // the headers
		if rows != int64(b.N)*exportBenchRecords {
			b.Fatalf("%d rows exported, want %d", rows, int64(b.N)*exportBenchRecords)
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(size)/float64(b.N)/(1<<20), "MiB/export")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	})

	b.Run("baseline/listrecords-1000", func(b *testing.B) {
		loc, _ := time.LoadLocation("America/Sao_Paulo")
		var rows int64
		for b.Loop() {
			rows += naiveExport(caller, b, e.client, camp, loc)
		}
		if rows != int64(b.N)*exportBenchRecords {
			b.Fatalf("%d rows listed, want %d", rows, int64(b.N)*exportBenchRecords)
		}
		b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	})
}

// exportBenchCampaign stores a campaign of n records with COPY (as
// benchList of engine_bench_test.go does), in the states of a run half
// done.
func exportBenchCampaign(b *testing.B, e *listEnv, account string, n int) string {
	b.Helper()
	ctx := context.Background()
	camp := e.campaign(b, account, "BR", dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED, 1)
	var list string
	if err := e.db.QueryRow(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, columns, status, records)
		VALUES (gen_random_uuid(), $1, $2, 'crm export', '{TelNumber,FullName,CustomerCode,City}', $3, $4) RETURNING id::text`,
		camp, account, int16(dialerv1.ListStatus_LIST_STATUS_READY), n).Scan(&list); err != nil {
		b.Fatal(err)
	}
	statuses := []string{StatusAnswered, StatusBusy, StatusNoAnswer, StatusReady, StatusAnsMachine, StatusFailed}
	cities := []string{"Rio de Janeiro", "São Paulo", "Campinas, SP", "Porto Alegre"}
	at := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		i++
		st := statuses[i%len(statuses)]
		numbers := []string{fmt.Sprintf("+552199%07d", i), fmt.Sprintf("+551130%07d", i)}
		fields := map[string]string{"FullName": fmt.Sprintf("Customer %d", i), "CustomerCode": fmt.Sprintf("%07d", i), "City": cities[i%len(cities)]}
		row := []any{camp, list, int64(i + 1), "", numbers, fields, 1, st, st != StatusReady && st != StatusBusy, int32(0), "", nil, int32(0), []string{}}
		if st != StatusReady {
			row[9], row[10], row[11], row[12] = int32(1+i%3), fmt.Sprintf("call-%d", i), at.Add(time.Duration(i)*time.Second), int32(i%200)
			if st == StatusAnswered && i%4 == 0 {
				row[13] = []string{"1"}
			}
		}
		return row, nil
	})
	if _, err := e.db.CopyFrom(ctx, pgx.Identifier{"dialer", "records"},
		[]string{"campaign_id", "list_id", "line", "raw", "numbers", "fields", "run", "status", "final", "tries", "call_id", "last_attempt_at",
			"last_duration_s", "tags"}, src); err != nil {
		b.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `VACUUM ANALYZE dialer.records`); err != nil {
		b.Fatal(err)
	}
	return camp
}

// naiveExport writes the campaign's records as CSV the way a client could
// before ExportRecords: ListRecords page after page (1,000, the most a
// page holds), each record formatted on the client. It returns the rows.
func naiveExport(ctx context.Context, b *testing.B, client dialerv1.DialerServiceClient, camp string, loc *time.Location) int64 {
	b.Helper()
	lists, err := client.ListLists(ctx, &dialerv1.ListListsRequest{CampaignId: camp})
	if err != nil {
		b.Fatal(err)
	}
	names, listNames := []string{}, map[string]string{}
	for _, l := range lists.GetLists() {
		listNames[l.GetId()] = l.GetName()
		for i, c := range l.GetColumns() {
			if i > 0 && c != ScheduleColumn && !slices.Contains(names, c) {
				names = append(names, c)
			}
		}
	}
	w := csv.NewWriter(io.Discard)
	_ = w.Write(append(append([]string(nil), recordColumns...), names...))
	var rows int64
	tok := ""
	for {
		page, err := client.ListRecords(ctx, &dialerv1.ListRecordsRequest{CampaignId: camp, PageSize: 1000, PageToken: tok})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page.GetRecords() {
			last, dur, next := "", "", ""
			if r.GetLastAttemptAt() != nil {
				last, dur = r.GetLastAttemptAt().AsTime().In(loc).Format(time.RFC3339), strconv.Itoa(int(r.GetLastDurationS()))
			}
			if r.GetNextAttemptAt() != nil {
				next = r.GetNextAttemptAt().AsTime().In(loc).Format(time.RFC3339)
			}
			row := []string{r.GetId(), csvsafe.Cell(listNames[r.GetListId()]), strconv.FormatInt(r.GetLine(), 10), strings.Join(r.GetNumbers(), "|"),
				strconv.Itoa(int(r.GetTries())), r.GetStatus(), "", r.GetLastCallId(), last, dur, next, csvsafe.Cell(strings.Join(r.GetTags(), "|"))}
			for _, n := range names {
				row = append(row, csvsafe.Cell(r.GetFields()[n]))
			}
			_ = w.Write(row)
			rows++
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	w.Flush()
	return rows
}

// heapPeak samples the heap in use every 10 ms until stopped.
func heapPeak() (*atomic.Uint64, func()) {
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return &peak, func() { close(done); <-stopped }
}
