package event

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzNames are the header names the fuzz tests pick from: safe tokens,
// including a repeated name. Content-Length and _body are left out because
// the wire formats reserve them for the body.
var fuzzNames = []string{"Event-Name", "Unique-ID", "variable_sip_h_X-Foo", "Hangup-Cause", "A", "Hangup-Cause"}

// fuzzEvent builds an event from fuzz input: three headers whose names are
// chosen by sel and whose values are arbitrary, plus an arbitrary body.
func fuzzEvent(sel uint8, v1, v2, v3, body string) *Event {
	e := &Event{Body: body}
	for i, v := range []string{v1, v2, v3} {
		e.Add(fuzzNames[(int(sel)>>(2*i)+i)%len(fuzzNames)], v)
	}
	return e
}

func addFuzzSeeds(f *testing.F) {
	f.Add(uint8(0), "CHANNEL_CREATE", "d4d4d4d4-0000-4000-8000-0000000000e1", "NORMAL_CLEARING", "")
	f.Add(uint8(7), "Sun, 22 Nov 2026 02:26:06 GMT", "sip:a@127.0.0.1:5090", `"Outbound Call" <1000>`, "+OK d4d4\n")
	f.Add(uint8(42), "%3A%3a%%41%", "", "ARRAY::6002|:6002", "-ERR USER_BUSY\n")
	f.Add(uint8(255), "é€\xff\x00x", "\r\n\t\x01\x7f", "{a=b,c='d e'}", "body\x00tail")
	f.Add(uint8(3), "ARRAY::", "ARRAY::x|:", "ARRAY::|:|:", "\n  ")
}

// FuzzPlainRoundTrip: ParsePlain(AppendPayload(Plain, e)) gives back e, up to
// what the plain format itself changes (see plainModel: NUL cuts a value,
// an empty value reads as "_undef_", and a '%' FreeSWITCH does not
// re-encode is decoded).
func FuzzPlainRoundTrip(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, sel uint8, v1, v2, v3, body string) {
		e := fuzzEvent(sel, v1, v2, v3, body)
		payload := AppendPayload(nil, Plain, e)
		got, err := ParsePlain(payload)
		if err != nil {
			t.Fatalf("ParsePlain(%q): %v", payload, err)
		}
		if want := plainModel(e); !eventsEqual(got, want) {
			t.Fatalf("payload %q: %s", payload, eventDiff(got, want))
		}
		checkFrame(t, Plain, e, payload)
	})
}

// FuzzJSONRoundTrip: ParseJSON(AppendPayload(JSON, e)) gives back e, with
// values and body cut at NUL as FreeSWITCH's C strings would be.
func FuzzJSONRoundTrip(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, sel uint8, v1, v2, v3, body string) {
		e := fuzzEvent(sel, v1, v2, v3, body)
		payload := AppendPayload(nil, JSON, e)
		got, err := ParseJSON(payload)
		if err != nil {
			t.Fatalf("ParseJSON(%q): %v", payload, err)
		}
		if want := jsonModel(e); !eventsEqual(got, want) {
			t.Fatalf("payload %q: %s", payload, eventDiff(got, want))
		}
		checkFrame(t, JSON, e, payload)
	})
}

// FuzzXMLRoundTrip: parseXML(AppendPayload(XML, e)) gives back e up to what
// the xml format changes (see xmlModel). Bodies are made valid UTF-8 first: switch_xml_ampencode silently
// drops bytes of broken sequences, which no reader can restore.
func FuzzXMLRoundTrip(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, sel uint8, v1, v2, v3, body string) {
		e := fuzzEvent(sel, v1, v2, v3, strings.ToValidUTF8(body, "?"))
		payload := AppendPayload(nil, XML, e)
		got, err := parseXML(payload)
		if err != nil {
			t.Fatalf("parseXML(%q): %v", payload, err)
		}
		if want := xmlModel(e); !eventsEqual(got, want) {
			t.Fatalf("payload %q: %s", payload, eventDiff(got, want))
		}
		checkFrame(t, XML, e, payload)
	})
}

// checkFrame checks AppendFrame wraps payload correctly.
func checkFrame(t *testing.T, f Format, e *Event, payload []byte) {
	t.Helper()
	frame := AppendFrame([]byte("z"), f, e)
	gotF, gotP, err := splitFrame(frame[1:])
	if err != nil || gotF != f || !bytes.Equal(gotP, payload) || frame[0] != 'z' {
		t.Fatalf("AppendFrame(%v) = %q (%v)", f, frame, err)
	}
}
