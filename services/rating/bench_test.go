package rating

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
)

// benchDeck is a 1,000,000-rate tariff as CSV and numbers that hit it:
// prefixes of 4 to 9 digits under 40 country codes, sharing paths as real
// carrier decks do.
var benchDeck = sync.OnceValues(func() ([]byte, []string) {
	codes := []string{"1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47",
		"48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84", "86", "90"}
	var b bytes.Buffer
	b.WriteString("prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from\n")
	numbers := make([]string, 0, 1<<16)
	for i := range 1_000_000 {
		cc := codes[i%len(codes)]
		block := strconv.Itoa(i / len(codes)) // 0..24999: 1 to 5 more digits
		p := cc + strings.Repeat("0", (i%3)+1) + block
		fmt.Fprintf(&b, "%s,Destination %s %d,0.0%d,0,1,1,\n", p, cc, i%500, 1+i%9)
		if len(numbers) < cap(numbers) && i%15 == 0 {
			numbers = append(numbers, "+"+(p + "123456789012345")[:12])
		}
	}
	return b.Bytes(), numbers
})

// BenchmarkAuthorizeGRPC measures Authorize over real gRPC on loopback
// with a 1,000,000-rate tariff, clients in parallel, against the naive
// design as baseline: the same server answering from PostgreSQL (every
// prefix of the number looked up through the primary key in one query).
func BenchmarkAuthorizeGRPC(b *testing.B) {
	e := newEnv(b, ServiceConfig{BlockPremium: true})
	deck, numbers := benchDeck()
	id := e.tariff(b, "bench", string(deck))
	e.assign(b, "acct", id, ratingv1.BillingMode_BILLING_MODE_PREPAID)
	e.topUp(b, "acct", 1_000_000_000)
	naive := naiveServer(b, e, id)
	// "cycled": 65,536 distinct numbers over and over (the Direction cache
	// warms up); "unique": every authorization a number never seen, so
	// libphonenumber runs every time (a dialer working through a list).
	for _, tc := range []struct {
		name   string
		conn   *grpc.ClientConn
		unique bool
	}{{"ringback-cycled", e.conn, false}, {"ringback-unique", e.conn, true}, {"naive-sql-cycled", naive, false}} {
		b.Run(tc.name, func(b *testing.B) {
			clients := make([]ratingv1.RatingServiceClient, 4) // several HTTP/2 connections, as several origination replicas
			for i := range clients {
				conn := tc.conn
				if i > 0 {
					var err error
					if conn, err = grpc.NewClient(tc.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
						b.Fatal(err)
					}
					defer conn.Close()
				}
				clients[i] = ratingv1.NewRatingServiceClient(conn)
			}
			var n, failed, refused atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := int(n.Add(1))
				c := clients[i%len(clients)]
				buf := make([]byte, 0, 16)
				for pb.Next() {
					i += 7
					number := numbers[i%len(numbers)]
					if tc.unique {
						// Same prefix, a fresh subscriber part: 8 goroutines
						// never repeat a number within 10^7 authorizations.
						buf = append(buf[:0], number[:6]...)
						buf = strconv.AppendInt(buf, 1_000_000+int64(i)%9_000_000, 10)
						number = string(buf)
					}
					_, err := c.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: number, Leg: "first"})
					switch status.Code(err) {
					case codes.OK:
					case codes.FailedPrecondition:
						refused.Add(1) // a decision too: no rate for a made-up number
					default:
						failed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "authorizations/s")
			b.ReportMetric(100*float64(refused.Load())/float64(b.N), "%refused")
			if failed.Load() > 0 {
				b.Fatalf("%d of %d authorizations failed", failed.Load(), b.N)
			}
		})
	}
}

// naiveRating answers Authorize from PostgreSQL.
type naiveRating struct {
	ratingv1.UnimplementedRatingServiceServer
	e      *testEnv
	tariff string
}

func (s *naiveRating) Authorize(ctx context.Context, req *ratingv1.AuthorizeRequest) (*ratingv1.AuthorizeResponse, error) {
	_, digits, err := normalize(req.GetNumber())
	if err != nil {
		return nil, err
	}
	prefixes := make([]string, len(digits))
	for i := range digits {
		prefixes[i] = digits[:i+1]
	}
	var r ratingv1.AppliedRate
	err = s.e.svc.Store.DB.QueryRow(ctx, `SELECT prefix, destination, rate_per_minute_micros, connection_fee_micros, min_seconds, increment_seconds
		FROM rating.naive_rates WHERE tariff_id = $1 AND prefix = ANY($2) AND effective_from <= now()
		ORDER BY length(prefix) DESC, effective_from DESC LIMIT 1`, s.tariff, prefixes).
		Scan(&r.Prefix, &r.Destination, &r.RatePerMinuteMicros, &r.ConnectionFeeMicros, &r.MinSeconds, &r.IncrementSeconds)
	if err == pgx.ErrNoRows {
		return nil, errorf(ErrDestinationNotSupported, "no rate")
	}
	if err != nil {
		return nil, err
	}
	return &ratingv1.AuthorizeResponse{Rate: &r}, nil
}

// naiveTable is the naive design's storage: every tariff's rates in one
// indexed table, as the first version of this service had them.
func naiveTable(b *testing.B, e *testEnv) {
	ctx := context.Background()
	if _, err := e.svc.Store.DB.Exec(ctx, `CREATE TABLE IF NOT EXISTS rating.naive_rates (
		tariff_id text NOT NULL, prefix text NOT NULL, effective_from timestamptz NOT NULL DEFAULT '-infinity',
		destination text NOT NULL, rate_per_minute_micros bigint NOT NULL, connection_fee_micros bigint NOT NULL DEFAULT 0,
		min_seconds integer NOT NULL DEFAULT 0, increment_seconds integer NOT NULL DEFAULT 1,
		PRIMARY KEY (tariff_id, prefix, effective_from))`); err != nil {
		b.Fatal(err)
	}
}

func naiveServer(b *testing.B, e *testEnv, tariff string) *grpc.ClientConn {
	naiveTable(b, e)
	t, err := e.svc.Store.GetTariff(context.Background(), tariff)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.svc.Store.DB.Exec(context.Background(), `INSERT INTO rating.naive_rates
		SELECT $1, prefix, effective_from, destination, rate_per_minute_micros, connection_fee_micros, min_seconds, increment_seconds
		FROM `+rateTable(t.RateSet), tariff); err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	ratingv1.RegisterRatingServiceServer(gs, &naiveRating{e: e, tariff: tariff})
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// BenchmarkImport1M imports a 1,000,000-rate CSV over gRPC into a tariff
// that already has 1,000,000 rates, while lookups run flat out; it reports
// the time from the first byte sent to the new tariff being swapped in,
// the lookups that failed meanwhile (must be 0), and the compiled tariff's
// memory. Baseline: the naive import, one INSERT per row in a transaction,
// measured on 100,000 rows and reported as rows/s beside ours.
func BenchmarkImport1M(b *testing.B) {
	e := newEnv(b, ServiceConfig{})
	deck, numbers := benchDeck()
	id := e.tariff(b, "bench", string(deck))
	e.assign(b, "acct", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	b.Run("ringback", func(b *testing.B) {
		for range b.N {
			stop := make(chan struct{})
			var lookups, failures atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := e.svc.Rater.Authorize(context.Background(), "acct", numbers[i%len(numbers)], ""); err != nil {
						failures.Add(1)
					}
					lookups.Add(1)
				}
			}()
			start := time.Now()
			res := e.importCSV(b, id, ratingv1.ImportMode_IMPORT_MODE_REPLACE, string(deck))
			took := time.Since(start)
			close(stop)
			wg.Wait()
			if res.GetErrorCount() != 0 || res.GetImported() != 1_000_000 {
				b.Fatalf("import: %v", res.GetErrors())
			}
			b.ReportMetric(took.Seconds(), "s/import")
			b.ReportMetric(1_000_000/took.Seconds(), "rows/s")
			b.ReportMetric(float64(failures.Load()), "failed-lookups")
			b.ReportMetric(float64(lookups.Load()), "lookups-during-import")
		}
		runtime.GC()
		t := e.svc.Rater.book.Get(id)
		b.ReportMetric(float64(t.MemoryBytes())/1e6, "MB-compiled-tariff")
	})
	b.Run("naive-insert-100k", func(b *testing.B) {
		naiveTable(b, e)
		rows := strings.Split(string(deck), "\n")[1:100_001]
		for range b.N {
			start := time.Now()
			err := pgx.BeginFunc(context.Background(), e.svc.Store.DB, func(tx pgx.Tx) error {
				if _, err := tx.Exec(context.Background(), `DELETE FROM rating.naive_rates WHERE tariff_id = 'naive'`); err != nil {
					return err
				}
				for _, line := range rows {
					f := strings.Split(line, ",")
					if _, err := tx.Exec(context.Background(), `INSERT INTO rating.naive_rates (tariff_id, prefix, destination, rate_per_minute_micros)
						VALUES ('naive', $1, $2, $3)`, f[0], f[1], 10_000); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(rows))/time.Since(start).Seconds(), "rows/s")
		}
	})
}
