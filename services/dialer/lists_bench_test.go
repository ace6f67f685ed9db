package dialer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

// benchList is a list of n recipients as a CRM exports them: two
// Brazilian numbers (national, written with separators) and three fields.
func benchList(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 80)
	b.WriteString("TelNumber,FullName,CustomerCode,City\n")
	cities := []string{"Rio de Janeiro", "São Paulo", "\"Campinas, SP\"", "Porto Alegre"}
	for i := range n {
		mobile := 10_000_000 + i
		fmt.Fprintf(&b, "(21) 9%04d-%04d|11 %04d-%04d,Customer %d,%07d,%s\n",
			mobile/10_000%10_000, mobile%10_000, 3000+i/10_000%1000, i%10_000, i, i, cities[i%len(cities)])
	}
	return b.Bytes()
}

// BenchmarkImportList1M is the target: a 1,000,000-record list
// imported in under 60 s on a 2-core box with PostgreSQL 15, through the
// gRPC method on a loopback server. It reports the median of 3 imports,
// and a naive baseline measured in the same run: the same parser, then
// one INSERT per row (in one transaction) for 50,000 rows, extrapolated.
// Run it alone:
//
//	go test -run '^$' -bench ImportList1M -benchtime 1x -timeout 30m ./dialer/
func BenchmarkImportList1M(b *testing.B) {
	const rows = 1_000_000
	const sample = 50_000
	data := benchList(rows)
	e := newListEnv(b)
	ctx := context.Background()
	camp := e.campaign(b, "acc-bench", "BR", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	empty := func() {
		b.Helper()
		if _, err := e.db.Exec(ctx, `TRUNCATE dialer.attempts, dialer.records, dialer.lists`); err != nil {
			b.Fatal(err)
		}
		if _, err := e.db.Exec(ctx, `VACUUM ANALYZE dialer.records`); err != nil {
			b.Fatal(err)
		}
	}

	var took []float64
	for b.Loop() {
		took = took[:0]
		for range 3 {
			empty()
			start := time.Now()
			resp, err := e.importCSV(ctx, "acc-bench", &dialerv1.ImportListRequest{CampaignId: camp}, data, 256<<10)
			if err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start).Seconds())
			if resp.GetList().GetRecords() != rows || resp.GetErrorCount() != 0 {
				b.Fatalf("imported %d records, %d errors: %v", resp.GetList().GetRecords(), resp.GetErrorCount(), resp.GetErrors())
			}
		}
	}
	slices.Sort(took)
	median := took[1]

	// The naive way, on a sample: a row, an INSERT.
	empty()
	var list string
	if err := e.db.QueryRow(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, status) VALUES (gen_random_uuid(), $1, 'acc-bench', 'naive', $2)
		RETURNING id::text`, camp, int16(dialerv1.ListStatus_LIST_STATUS_IMPORTING)).Scan(&list); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	lr, err := newListReader(bytes.NewReader(data), "BR", sample)
	if err != nil {
		b.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		for range sample {
			row, err := lr.Next()
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO dialer.records (campaign_id, list_id, line, raw, numbers, fields, schedule_ext, next_at, status, run)
				VALUES ($1, $2, $3, $4, $5, $6, '', '-infinity', 'ready', 0)`, camp, list, row.Line, row.Raw, row.Numbers, row.Fields()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && err != io.EOF {
		b.Fatal(err)
	}
	naive := time.Since(start).Seconds() * rows / sample

	b.ReportMetric(median, "s/import")
	b.ReportMetric(rows/median, "rows/s")
	b.ReportMetric(naive, "naive-s/import")
	b.ReportMetric(naive/median, "speedup")
	b.Logf("1M rows (%d MiB): imports took %s s (median %.1f s, %.0f rows/s); naive row-by-row INSERT: %.1f s extrapolated from %d rows (%.0f rows/s)",
		len(data)>>20, fmtSecs(took), median, rows/median, naive, sample, rows/naive)
}

func fmtSecs(s []float64) string {
	var b []byte
	for i, v := range s {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendFloat(b, v, 'f', 1, 64)
	}
	return string(b)
}

// BenchmarkCSVParse1M is the parser alone on the same list: what the
// import spends on the CPU before PostgreSQL (mostly normalizing numbers).
func BenchmarkCSVParse1M(b *testing.B) {
	const rows = 1_000_000
	data := benchList(rows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var json []byte
	for b.Loop() {
		lr, err := newListReader(bytes.NewReader(data), "BR", MaxListRows)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			row, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil || row.Err != "" {
				b.Fatalf("line %d: %v %s", row.Line, err, row.Err)
			}
			json = row.appendFieldsJSON(json[:0])
			n++
		}
		if n != rows {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
