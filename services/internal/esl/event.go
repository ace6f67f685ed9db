package esl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event is one FreeSWITCH event as this package delivers it. It is our own
// type so that no eslgo (or wire) type leaks to callers.
type Event struct {
	// Node is the address of the switch that sent the event.
	Node string
	// Name is Event-Name (CHANNEL_ANSWER, BACKGROUND_JOB, CUSTOM, ...).
	Name string
	// Headers are the event's headers, values already decoded. When
	// FreeSWITCH repeats a header (CHANNEL_HANGUP_COMPLETE sends
	// Hangup-Cause twice) the last value is kept. Treat it as read-only.
	Headers map[string]string
	// Body is the event body (_body in JSON): the result of a
	// BACKGROUND_JOB, for instance.
	Body string
}

// Get returns a header's value, or "" if absent.
func (e Event) Get(name string) string { return e.Headers[name] }

// UniqueID is the channel (leg) the event is about; for our originates it is
// the origination_uuid we chose.
func (e Event) UniqueID() string { return e.Headers["Unique-ID"] }

// JobUUID is the Job-UUID of a BACKGROUND_JOB.
func (e Event) JobUUID() string { return e.Headers["Job-UUID"] }

// CoreUUID identifies the FreeSWITCH process that sent the event; it changes
// when the switch restarts.
func (e Event) CoreUUID() string { return e.Headers["Core-UUID"] }

// Sequence is Event-Sequence: FreeSWITCH's own ordering of events, which is
// what to sort by (Event-Date-Timestamp is shared by many events).
func (e Event) Sequence() uint64 {
	n, _ := strconv.ParseUint(e.Headers["Event-Sequence"], 10, 64)
	return n
}

// Var returns the channel variable name ("variable_<name>" header).
func (e Event) Var(name string) string { return e.Headers["variable_"+name] }

// decodeEventJSON decodes a text/event-json payload. FreeSWITCH writes a
// flat object of string values, possibly with duplicate keys (the captures
// show Hangup-Cause twice), so a hand-written scan of that shape does the
// work, with encoding/json only for strings that contain escapes. Anything
// else (numbers, nesting) goes to the general decoder. This is the client's
// hottest path: every event of every call passes here.
func decodeEventJSON(node string, b []byte) (Event, error) {
	ev := Event{Node: node, Headers: make(map[string]string, 64)}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ev, fmt.Errorf("%w: event json: not an object", ErrProtocol)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return ev, nil
	}
	for {
		key, j, ok := scanString(b, i)
		if !ok {
			return decodeEventJSONSlow(node, b)
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return decodeEventJSONSlow(node, b)
		}
		val, j, ok := scanString(b, skipSpace(b, i+1))
		if !ok {
			return decodeEventJSONSlow(node, b)
		}
		if key == "_body" {
			ev.Body = val
		} else {
			ev.Headers[key] = val
		}
		i = skipSpace(b, j)
		if i >= len(b) {
			return decodeEventJSONSlow(node, b)
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return decodeEventJSONSlow(node, b)
		}
		i = skipSpace(b, i+1)
	}
	ev.Name = ev.Headers["Event-Name"]
	return ev, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the JSON string starting at b[i] and returns it and the
// index after its closing quote; ok is false if b[i] does not start a
// valid string.
func scanString(b []byte, i int) (s string, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			if !escaped {
				return string(b[i+1 : j]), j + 1, true
			}
			if err := json.Unmarshal(b[i:j+1], &s); err != nil {
				return "", i, false
			}
			return s, j + 1, true
		case c < 0x20:
			return "", i, false
		}
	}
	return "", i, false
}

// decodeEventJSONSlow is the general decoder: encoding/json tokens, any
// value type, nesting skipped. decodeEventJSON falls back to it.
func decodeEventJSONSlow(node string, b []byte) (Event, error) {
	ev := Event{Node: node, Headers: make(map[string]string, 64)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return ev, fmt.Errorf("%w: event json: %w", ErrProtocol, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ev, fmt.Errorf("%w: event json: not an object", ErrProtocol)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return ev, fmt.Errorf("%w: event json: %w", ErrProtocol, err)
		}
		key, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return ev, fmt.Errorf("%w: event json value of %q: %w", ErrProtocol, key, err)
		}
		var val string
		switch v := vt.(type) {
		case string:
			val = v
		case json.Number:
			val = v.String()
		case bool:
			val = strconv.FormatBool(v)
		case json.Delim:
			// FreeSWITCH never nests; skip whatever this is.
			for depth := 1; depth > 0; {
				t, err := dec.Token()
				if err != nil {
					return ev, fmt.Errorf("%w: event json value of %q: %w", ErrProtocol, key, err)
				}
				if d, ok := t.(json.Delim); ok {
					if d == '{' || d == '[' {
						depth++
					} else {
						depth--
					}
				}
			}
		}
		if key == "_body" {
			ev.Body = val
			continue
		}
		ev.Headers[key] = val
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return ev, fmt.Errorf("%w: event json: unterminated object", ErrProtocol)
	}
	ev.Name = ev.Headers["Event-Name"]
	return ev, nil
}

// NodeUp reports that a node's session is (again) established, subscribed,
// and usable. It is delivered in the node's event stream, after every event
// of the previous session and before any event that FreeSWITCH queued after
// the channel list was taken, so a handler can reconcile without races:
// every leg it believed live on Node that is missing from Channels ended
// while we were not listening (or, if Restarted, with the old process).
type NodeUp struct {
	// Node is the switch's address.
	Node string
	// CoreUUID identifies the FreeSWITCH process now connected.
	CoreUUID string
	// PreviousCoreUUID is the process seen before, "" on the first connect.
	PreviousCoreUUID string
	// Restarted means CoreUUID differs from PreviousCoreUUID: FreeSWITCH
	// restarted and every channel of the old process is gone, with no
	// hangup events for them.
	Restarted bool
	// Reconnects counts the sessions before this one (0 on the first).
	Reconnects int
	// Channels are the switch's live channels right after subscribing.
	Channels []Channel
}

// NodeDown reports that a node's session ended; events may be missed until
// the next NodeUp.
type NodeDown struct {
	// Node is the switch's address.
	Node string
	// Err says why the session ended.
	Err error
}

// Channel is one live channel as `show channels as json` lists it.
type Channel struct {
	UUID           string    // the leg's Unique-ID (our origination_uuid)
	Direction      string    // inbound or outbound
	Name           string    // sofia/gateway/carrier/155..., loopback/...
	State          string    // CS_EXECUTE, CS_EXCHANGE_MEDIA, ...
	CallState      string    // RINGING, EARLY, ACTIVE, HELD, ...
	Destination    string    // the dialed number
	CallerIDNumber string    // cid_num
	CallerIDName   string    // cid_name
	CallUUID       string    // call_uuid: shared by legs of one call
	Application    string    // what the leg runs now (park, playback, ...)
	Created        time.Time // created_epoch, whole seconds
}

// parseChannels decodes the body of `show channels as json`:
// {"row_count": 0} when empty, else {"row_count":N,"rows":[{...},...]} with
// string values.
func parseChannels(body []byte) ([]Channel, error) {
	var doc struct {
		RowCount int                 `json:"row_count"`
		Rows     []map[string]string `json:"rows"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &doc); err != nil {
		return nil, fmt.Errorf("%w: show channels as json: %w (%.80q)", ErrProtocol, err, body)
	}
	out := make([]Channel, 0, len(doc.Rows))
	for _, r := range doc.Rows {
		c := Channel{
			UUID: r["uuid"], Direction: r["direction"], Name: r["name"], State: r["state"],
			CallState: r["callstate"], Destination: r["dest"], CallerIDNumber: r["cid_num"],
			CallerIDName: r["cid_name"], CallUUID: r["call_uuid"], Application: r["application"],
		}
		if s, err := strconv.ParseInt(r["created_epoch"], 10, 64); err == nil {
			c.Created = time.Unix(s, 0)
		}
		out = append(out, c)
	}
	return out, nil
}

// trimBody strips the single trailing newline most api bodies end with
// (uuid_getvar and friends have none), so values compare as written.
func trimBody(b []byte) string {
	return strings.TrimSuffix(string(b), "\n")
}
