package dialer

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

// StaleImport is how long a list may stay IMPORTING before it is taken for
// the leftover of an import whose process died: its rows were never
// committed (a list's records arrive in the transaction that makes it
// READY), so it only needs to say FAILED.
const StaleImport = time.Hour

// sweepImports marks stale IMPORTING lists FAILED every minute until ctx
// ends. Any replica may do it; the update is idempotent.
func (e *Engine) sweepImports(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, err := SweepStaleImports(ctx, e.db, e.now().Add(-StaleImport)); err != nil {
			if ctx.Err() == nil {
				e.log.Warn("sweep stale list imports", "err", err)
			}
		} else if n > 0 {
			e.log.Warn("lists left importing by a process that died marked failed", "lists", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepStaleImports marks FAILED the lists still IMPORTING that were
// created before cutoff, and returns how many.
func SweepStaleImports(ctx context.Context, db *pgxpool.Pool, cutoff time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE dialer.lists SET status = $1 WHERE status = $2 AND created_at < $3`,
		int16(dialerv1.ListStatus_LIST_STATUS_FAILED), int16(dialerv1.ListStatus_LIST_STATUS_IMPORTING), cutoff)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
