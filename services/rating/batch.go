package rating

import "context"

// batcher group-commits requests: callers hand theirs to one committer and
// wait for the transaction that carries it, and whatever arrives while a
// transaction commits goes into the next one. A quiet system commits each
// request at once; a busy one commits many per transaction. Rating uses it
// where one account's row lock serializes work (reservations, settlements):
// the lock is held across a commit, so one request per transaction caps an
// account at a few hundred a second.
type batcher[Q, R any] struct {
	in  chan batchItem[Q, R]
	max int
	run func(ctx context.Context, qs []Q) ([]R, error)
}

type batchItem[Q, R any] struct {
	q    Q
	done chan batchResult[R]
}

type batchResult[R any] struct {
	r   R
	err error
}

func newBatcher[Q, R any](max int, run func(context.Context, []Q) ([]R, error)) *batcher[Q, R] {
	return &batcher[Q, R]{in: make(chan batchItem[Q, R]), max: max, run: run}
}

// loop commits batches until ctx ends.
func (b *batcher[Q, R]) loop(ctx context.Context) {
	items := make([]batchItem[Q, R], 0, b.max)
	qs := make([]Q, 0, b.max)
	for {
		items, qs = items[:0], qs[:0]
		select {
		case <-ctx.Done():
			return
		case it := <-b.in:
			items = append(items, it)
		}
	fill:
		for len(items) < b.max {
			select {
			case it := <-b.in:
				items = append(items, it)
			default:
				break fill
			}
		}
		for _, it := range items {
			qs = append(qs, it.q)
		}
		rs, err := b.run(ctx, qs)
		for i, it := range items {
			res := batchResult[R]{err: err}
			if err == nil {
				res.r = rs[i]
			}
			it.done <- res
		}
	}
}

// do submits q and waits for its batch.
func (b *batcher[Q, R]) do(ctx context.Context, q Q) (R, error) {
	it := batchItem[Q, R]{q: q, done: make(chan batchResult[R], 1)}
	var zero R
	select {
	case b.in <- it:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-it.done:
		return res.r, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
