package rating

import (
	"fmt"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/rating/prefix"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Tariff is one tariff compiled for lookups. It is immutable: a change
// compiles a new one and swaps it in.
type Tariff struct {
	ID       string
	Currency string
	Version  int64
	table    *prefix.Table
	rates    []Rate // indexed by the table's values
}

// Rate is one rate of a compiled tariff.
type Rate struct {
	Prefix      string
	Destination string
	billing.Rate
	From int64 // unix seconds; prefix.Never: always
}

// Compile builds a tariff for lookups from its rates.
func Compile(id, currency string, version int64, rates []tariffcsv.Rate) (*Tariff, error) {
	t := &Tariff{ID: id, Currency: currency, Version: version, rates: make([]Rate, len(rates))}
	entries := make([]prefix.Entry, len(rates))
	for i, r := range rates {
		from := prefix.Never
		if !r.EffectiveFrom.IsZero() {
			from = r.EffectiveFrom.Unix()
		}
		t.rates[i] = Rate{
			Prefix: r.Prefix, Destination: r.Destination, From: from,
			Rate: billing.Rate{PerMinuteMicros: r.RatePerMinuteMicros, ConnectionFeeMicros: r.ConnectionFeeMicros,
				MinSeconds: r.MinSeconds, IncrementSeconds: r.IncrementSeconds},
		}
		entries[i] = prefix.Entry{Prefix: r.Prefix, From: from, Value: uint32(i)}
	}
	if len(rates) > math.MaxUint32 {
		return nil, fmt.Errorf("tariff %s: too many rates", id)
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
func (t *Tariff) Lookup(digits string, at time.Time) (*Rate, bool) {
	if t == nil {
		return nil, false
	}
	v, _, ok := t.table.Lookup(digits, at.Unix())
	if !ok {
		return nil, false
	}
	return &t.rates[v], true
}

// Len is the number of rates.
func (t *Tariff) Len() int { return len(t.rates) }

// MemoryBytes estimates the tariff's heap footprint: the table plus the
// rates (destination strings are interned by the CSV parser and counted
// once per distinct name only approximately, as their headers).
func (t *Tariff) MemoryBytes() int {
	const rateSize = 16 + 16 + 24 + 8 // two string headers, billing.Rate, From
	return t.table.MemoryBytes() + cap(t.rates)*rateSize
}

// Book holds the compiled tariffs. Readers never lock: the set is a map
// replaced whole (copy on write) on every change, and tariffs are few.
type Book struct {
	mu      sync.Mutex // serializes writers
	tariffs atomic.Pointer[map[string]*Tariff]
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
	m := maps.Clone(old)
	m[t.ID] = t
	b.tariffs.Store(&m)
}

// Remove drops a tariff.
func (b *Book) Remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.tariffs.Load()
	if _, ok := old[id]; !ok {
		return
	}
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
