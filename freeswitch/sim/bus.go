package sim

import (
	"strconv"
	"sync"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
)

// outEvent is one fired event as listeners receive it. It is encoded lazily,
// once per wire format, however many connections receive it.
type outEvent struct {
	ev       *event.Event
	name     string
	subclass string
	uuid     string // Unique-ID, "" for non-channel events
	once     [3]sync.Once
	frames   [3][]byte
}

func (o *outEvent) frame(f event.Format) []byte {
	o.once[f].Do(func() {
		// Size the buffer once: growing it header by header was the
		// largest cost of delivering an event.
		n := 96 + len(o.ev.Body)
		for _, hd := range o.ev.Headers {
			n += len(hd.Name) + len(hd.Value) + 8
		}
		if f != event.JSON {
			n += n / 4 // URL encoding and XML tags
		}
		o.frames[f] = event.AppendFrame(make([]byte, 0, n), f, o.ev)
	})
	return o.frames[f]
}

// listener is what the bus delivers events to: an event-socket connection.
type listener interface {
	// accepts reports whether the listener wants events named name/subclass
	// at all (before filters); it is the cheap check that lets the core skip
	// building events nobody listens to.
	accepts(name, subclass string) bool
	// deliver queues an event that passed accepts; the listener applies its
	// filters and myevents restriction itself.
	deliver(o *outEvent)
}

// bus assigns Event-Sequence numbers and fans events out to listeners in the
// order they were fired, as switch_event_fire does.
type bus struct {
	mu        sync.Mutex
	seq       uint64
	listeners map[listener]struct{}
	core      *headerSource
}

// headerSource produces the headers every event starts with.
type headerSource struct {
	coreUUID string
	hostname string
	ipv4     string
	ipv6     string
	clock    *Clock
}

func newBus(hs *headerSource) *bus {
	return &bus{listeners: make(map[listener]struct{}), core: hs}
}

func (b *bus) add(l listener) {
	b.mu.Lock()
	b.listeners[l] = struct{}{}
	b.mu.Unlock()
}

func (b *bus) remove(l listener) {
	b.mu.Lock()
	delete(b.listeners, l)
	b.mu.Unlock()
}

// wants reports whether any listener would take an event of this name.
func (b *bus) wants(name, subclass string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for l := range b.listeners {
		if l.accepts(name, subclass) {
			return true
		}
	}
	return false
}

// eventBuilder accumulates an event's own headers; fire writes the standard
// header block (Event-Name .. Event-Sequence) in front of them.
type eventBuilder struct {
	name, subclass string
	file, fn       string
	line           int
	headers        []event.Header
	body           string
	hasBody        bool
	uuid           string
	at             time.Time
}

func (e *eventBuilder) add(name, value string) {
	e.headers = append(e.headers, event.Header{Name: name, Value: value})
}

// fire numbers an event and, when some listener accepts it, lets build fill
// its headers and queues it. Building is skipped when nobody listens, which
// keeps unobserved channels cheap; Event-Sequence still advances, as it does
// in FreeSWITCH for every fired event.
func (b *bus) fire(name, subclass string, build func(e *eventBuilder)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	var targets []listener
	for l := range b.listeners {
		if l.accepts(name, subclass) {
			targets = append(targets, l)
		}
	}
	if len(targets) == 0 {
		return
	}
	// The standard block is written first with a placeholder timestamp
	// block, so build appends straight into the final slice.
	e := &eventBuilder{name: name, subclass: subclass}
	e.headers = make([]event.Header, 0, 160)
	if subclass != "" {
		e.headers = append(e.headers, event.Header{Name: "Event-Subclass", Value: subclass})
	}
	e.headers = append(e.headers,
		event.Header{Name: "Event-Name", Value: name},
		event.Header{Name: "Core-UUID", Value: b.core.coreUUID},
		event.Header{Name: "FreeSWITCH-Hostname", Value: b.core.hostname},
		event.Header{Name: "FreeSWITCH-Switchname", Value: b.core.hostname},
		event.Header{Name: "FreeSWITCH-IPv4", Value: b.core.ipv4},
		event.Header{Name: "FreeSWITCH-IPv6", Value: b.core.ipv6},
		event.Header{Name: "Event-Date-Local"},
		event.Header{Name: "Event-Date-GMT"},
		event.Header{Name: "Event-Date-Timestamp"},
		event.Header{Name: "Event-Calling-File"},
		event.Header{Name: "Event-Calling-Function"},
		event.Header{Name: "Event-Calling-Line-Number"},
		event.Header{Name: "Event-Sequence", Value: strconv.FormatUint(b.seq, 10)},
	)
	std := len(e.headers) - 7
	build(e)
	at := e.at
	if at.IsZero() {
		at = b.core.clock.Now()
	}
	hs := e.headers
	hs[std].Value = at.Local().Format("2006-01-02 15:04:05")
	hs[std+1].Value = at.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	hs[std+2].Value = strconv.FormatInt(at.UnixMicro(), 10)
	hs[std+3].Value = e.file
	hs[std+4].Value = e.fn
	hs[std+5].Value = strconv.Itoa(e.line)
	ev := &event.Event{Headers: hs}
	if e.hasBody {
		ev.Body = e.body
	}
	o := &outEvent{ev: ev, name: name, subclass: subclass, uuid: e.uuid}
	for _, l := range targets {
		l.deliver(o)
	}
}
