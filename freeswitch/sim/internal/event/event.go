// Package event holds a FreeSWITCH event and writes it byte for byte the way
// FreeSWITCH 1.10 mod_event_socket sends it for "event plain", "event json" and
// "event xml", so that event-socket clients talking to the simulator see
// exactly what a real switch would send them.
//
// The encoders follow the C code rather than a specification:
//
//   - plain is switch_event_serialize(event, &buf, SWITCH_TRUE): one
//     "Name: value\n" line per header with the value passed through
//     switch_url_encode, an empty value written as "_undef_", then either
//     "Content-Length: n\n\n"+body or a lone "\n".
//   - json is cJSON_PrintUnformatted of switch_event_serialize_json_obj: an
//     object of string members in header order (duplicates kept), values not
//     URL-encoded, then "Content-Length" and "_body" when there is a body.
//   - xml is switch_xml_toxml(switch_event_xmlize(event), SWITCH_FALSE): an
//     <event><headers> tree indented by two spaces, values URL-encoded inside
//     the tags, then <Content-Length> and <body> when there is a body.
//
// Strings are treated as C strings: a value or body is cut at its first NUL
// byte, because FreeSWITCH could never hold more than that. A header value
// that starts with "ARRAY::" is a FreeSWITCH array header (elements joined by
// "|:", as switch_event_add_array reads them): plain writes it as one encoded
// string, json as an array of strings and xml as one element per item.
//
// The encoders are append-style and do not allocate when dst has room; they
// run on the simulator's hot path.
package event

import "strconv"

// Header is one event header. FreeSWITCH events may repeat a name
// (CHANNEL_HANGUP_COMPLETE carries Hangup-Cause twice), so an event keeps its
// headers as an ordered list rather than a map.
type Header struct{ Name, Value string }

// Event is a FreeSWITCH event: an ordered header list plus an optional body
// (BACKGROUND_JOB carries the api reply there). An empty Body means no body.
type Event struct {
	Headers []Header
	Body    string
}

// Get returns the value of the first header called name, or "" if there is
// none. Names compare ASCII case-insensitively, as switch_event_get_header
// does.
func (e *Event) Get(name string) string {
	for i := range e.Headers {
		if equalFoldASCII(e.Headers[i].Name, name) {
			return e.Headers[i].Value
		}
	}
	return ""
}

// Name returns the event's type, its Event-Name header (for example
// "CHANNEL_ANSWER").
func (e *Event) Name() string { return e.Get("Event-Name") }

// Add appends a header, keeping any earlier header of the same name, as
// switch_event_add_header with SWITCH_STACK_BOTTOM does on the wire.
func (e *Event) Add(name, value string) {
	e.Headers = append(e.Headers, Header{Name: name, Value: value})
}

// Clone returns a copy of e whose header list can be changed without
// affecting e, so one template event can be stamped out per channel.
func (e *Event) Clone() *Event {
	c := &Event{Body: e.Body}
	if e.Headers != nil {
		c.Headers = make([]Header, len(e.Headers))
		copy(c.Headers, e.Headers)
	}
	return c
}

// equalFoldASCII reports whether a and b are equal under ASCII case folding,
// like C strcasecmp (no Unicode folding).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// Format is an event-socket event encoding, chosen by the client's
// "event plain|json|xml ..." command.
type Format int

// The three encodings mod_event_socket offers. Plain is the zero value
// because it is the listener's default format.
const (
	Plain Format = iota
	JSON
	XML
)

// ParseFormat maps the format word of an "event" command to a Format.
// FreeSWITCH compares it with strcasecmp, so "JSON" and "Xml" are accepted
// too. ok is false for anything else (FreeSWITCH then treats the word as an
// event name).
func ParseFormat(s string) (f Format, ok bool) {
	switch {
	case equalFoldASCII(s, "plain"):
		return Plain, true
	case equalFoldASCII(s, "json"):
		return JSON, true
	case equalFoldASCII(s, "xml"):
		return XML, true
	}
	return Plain, false
}

// String returns the format's name as used in the "event" command and in the
// Content-Type suffix: "plain", "json" or "xml".
func (f Format) String() string {
	switch f {
	case Plain:
		return "plain"
	case JSON:
		return "json"
	case XML:
		return "xml"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// ContentType returns the Content-Type of an event frame in this format,
// for example "text/event-json".
func (f Format) ContentType() string {
	switch f {
	case Plain:
		return "text/event-plain"
	case JSON:
		return "text/event-json"
	case XML:
		return "text/event-xml"
	}
	return "text/event-" + f.String()
}
