package rating

import (
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/rating/prefix"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Tariff is one tariff compiled for lookups. It is immutable: a change
// compiles a new one and swaps it in. Its slices hold no pointers (names
// are indexes into dests), so a million rates cost the garbage collector
// nothing to scan.
type Tariff struct {
	ID       string
	Currency string
	Version  int64
	table    *prefix.Table
	rates    []rateRec // indexed by the table's values
	dests    []string  // distinct destination names
}

type rateRec struct {
	billing.Rate
	from int64
	dest uint32
}

// Rate is the rate that applies to a number.
type Rate struct {
	Prefix      string
	Destination string
	billing.Rate
	From int64 // unix seconds; prefix.Never: always
}

// Compile builds a tariff for lookups from its rates.
func Compile(id, currency string, version int64, rates []tariffcsv.Rate) (*Tariff, error) {
	if len(rates) > math.MaxUint32 {
		return nil, fmt.Errorf("tariff %s: too many rates", id)
	}
	t := &Tariff{ID: id, Currency: currency, Version: version, rates: make([]rateRec, len(rates))}
	entries := make([]prefix.Entry, len(rates))
	names := map[string]uint32{}
	for i, r := range rates {
		from := prefix.Never
		if !r.EffectiveFrom.IsZero() {
			from = r.EffectiveFrom.Unix()
		}
		d, ok := names[r.Destination]
		if !ok {
			d = uint32(len(t.dests))
			names[r.Destination] = d
			t.dests = append(t.dests, r.Destination)
		}
		t.rates[i] = rateRec{from: from, dest: d,
			Rate: billing.Rate{PerMinuteMicros: r.RatePerMinuteMicros, ConnectionFeeMicros: r.ConnectionFeeMicros,
				MinSeconds: r.MinSeconds, IncrementSeconds: r.IncrementSeconds}}
		entries[i] = prefix.Entry{Prefix: r.Prefix, From: from, Value: uint32(i)}
	}
	table, err := prefix.Build(entries)
	if err != nil {
		return nil, fmt.Errorf("compile tariff %s: %w", id, err)
	}
	t.table = table
	return t, nil
}

// Lookup returns the rate that applies to digits (E.164 without "+") at
// instant at.
func (t *Tariff) Lookup(digits string, at time.Time) (Rate, bool) {
	if t == nil {
		return Rate{}, false
	}
	v, n, ok := t.table.Lookup(digits, at.Unix())
	if !ok {
		return Rate{}, false
	}
	r := &t.rates[v]
	return Rate{Prefix: digits[:n], Destination: t.dests[r.dest], Rate: r.Rate, From: r.from}, true
}

// Len is the number of rates.
func (t *Tariff) Len() int { return len(t.rates) }

// MemoryBytes is the tariff's heap footprint: the prefix table, the rates
// and the distinct destination names.
func (t *Tariff) MemoryBytes() int {
	n := t.table.MemoryBytes() + cap(t.rates)*int(unsafe.Sizeof(rateRec{})) + cap(t.dests)*16
	for _, d := range t.dests {
		n += len(d)
	}
	return n
}

// Book holds the compiled tariffs. Readers never lock: the set is a map
// replaced whole (copy on write) on every change, and tariffs are few.
type Book struct {
	mu      sync.Mutex // serializes writers
	tariffs atomic.Pointer[map[string]*Tariff]
	// gone holds, for each tariff removed (under mu), the lowest version a
	// reload may put back: a reload that read the tariff before it was
	// deleted must not bring it back.
	gone map[string]int64
}

// NewBook returns an empty book.
func NewBook() *Book {
	b := &Book{}
	m := map[string]*Tariff{}
	b.tariffs.Store(&m)
	return b
}

// Get returns a tariff, or nil.
func (b *Book) Get(id string) *Tariff {
	return (*b.tariffs.Load())[id]
}

// Put swaps a tariff in, unless the book already holds a newer version
// (two reloads racing must not go back in time).
func (b *Book) Put(t *Tariff) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.tariffs.Load()
	if cur, ok := old[t.ID]; ok && cur.Version > t.Version {
		return
	}
	if low, ok := b.gone[t.ID]; ok {
		if t.Version < low {
			return
		}
		delete(b.gone, t.ID)
	}
	m := maps.Clone(old)
	m[t.ID] = t
	b.tariffs.Store(&m)
}

// Remove drops a deleted tariff: no reload of the version held, or of an
// older one, puts it back.
func (b *Book) Remove(id string) { b.drop(id, 1) }

// drop removes a tariff; reloads of versions below the one held plus
// above are refused.
func (b *Book) drop(id string, above int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.tariffs.Load()
	cur, ok := old[id]
	if !ok {
		return
	}
	if b.gone == nil {
		b.gone = map[string]int64{}
	}
	b.gone[id] = cur.Version + above
	m := maps.Clone(old)
	delete(m, id)
	b.tariffs.Store(&m)
}

// Versions lists the tariffs held and their versions.
func (b *Book) Versions() map[string]int64 {
	out := map[string]int64{}
	for id, t := range *b.tariffs.Load() {
		out[id] = t.Version
	}
	return out
}
