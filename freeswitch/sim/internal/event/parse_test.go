package event

import (
	"strings"
	"testing"
)

func TestParsePlain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     *Event
	}{
		{"headers only", "Event-Name: HEARTBEAT\nUp-Time: 0%20years\n\n",
			&Event{Headers: []Header{{"Event-Name", "HEARTBEAT"}, {"Up-Time", "0 years"}}}},
		{"duplicates in order", "A: 1\nB: 2\nA: 3\n\n",
			&Event{Headers: []Header{{"A", "1"}, {"B", "2"}, {"A", "3"}}}},
		{"body", "Event-Name: BACKGROUND_JOB\nContent-Length: 5\n\n+OK\n\n",
			&Event{Headers: []Header{{"Event-Name", "BACKGROUND_JOB"}}, Body: "+OK\n\n"}},
		{"body with colon lines", "Content-Length: 7\n\nA: b\nc\n",
			&Event{Body: "A: b\nc\n"}},
		{"content-length not last", "Content-Length: 3\nX: y\n\n",
			&Event{Headers: []Header{{"Content-Length", "3"}, {"X", "y"}}}},
		{"undef kept", "Empty: _undef_\n\n", &Event{Headers: []Header{{"Empty", "_undef_"}}}},
		{"lower-case hex decoded", "V: a%3ab%2F\n\n", &Event{Headers: []Header{{"V", "a:b/"}}}},
		{"lone percent kept", "V: 100%\nW: %G1\nX: %4\n\n", &Event{Headers: []Header{{"V", "100%"}, {"W", "%G1"}, {"X", "%4"}}}},
		{"crlf", "A: 1\r\nB: 2\r\n\r\n", &Event{Headers: []Header{{"A", "1"}, {"B", "2"}}}},
		{"crlf body", "Content-Length: 2\r\n\r\nok", &Event{Body: "ok"}},
		{"empty value", "A:\nB: \n\n", &Event{Headers: []Header{{"A", ""}, {"B", ""}}}},
		{"empty event", "\n", &Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePlain([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !eventsEqual(got, tt.want) {
				t.Errorf("ParsePlain(%q): %s", tt.in, eventDiff(got, tt.want))
			}
		})
	}
}

func TestParsePlainErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"A: 1\n",
		"A: 1",
		"no colon\n\n",
		": no name\n\n",
		"A: 1\n\nextra",
		"Content-Length: x\n\nabc",
		"Content-Length: -1\n\n",
		"Content-Length: 5\n\nabc",
		"Content-Length: 2\n\nabc",
	} {
		if e, err := ParsePlain([]byte(in)); err == nil {
			t.Errorf("ParsePlain(%q) = %+v, want an error", in, e)
		}
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     *Event
	}{
		{"duplicates in order", `{"A":"1","B":"2","A":"3"}`,
			&Event{Headers: []Header{{"A", "1"}, {"B", "2"}, {"A", "3"}}}},
		{"body drops its content-length", `{"Event-Name":"BACKGROUND_JOB","Content-Length":"4","_body":"+OK\n"}`,
			&Event{Headers: []Header{{"Event-Name", "BACKGROUND_JOB"}}, Body: "+OK\n"}},
		{"content-length after body dropped", `{"_body":"x","Content-Length":"1","B":"2"}`,
			&Event{Headers: []Header{{"B", "2"}}, Body: "x"}},
		{"content-length away from body kept", `{"Content-Length":"9","A":"1","_body":"x"}`,
			&Event{Headers: []Header{{"Content-Length", "9"}, {"A", "1"}}, Body: "x"}},
		{"content-length without body kept", `{"Content-Length":"3"}`,
			&Event{Headers: []Header{{"Content-Length", "3"}}}},
		{"array", `{"variable_DP_MATCH":["6002","6002"],"One":["x"]}`,
			&Event{Headers: []Header{{"variable_DP_MATCH", "ARRAY::6002|:6002"}, {"One", "ARRAY::x"}}}},
		{"escapes", `{"A":"\"q\" \\ \/ \b\f\n\r\t \u0001 \u00e9 \ud83d\ude00"}`,
			&Event{Headers: []Header{{"A", "\"q\" \\ / \b\f\n\r\t \x01 é 😀"}}}},
		{"lone surrogate", `{"A":"\ud83d x"}`, &Event{Headers: []Header{{"A", "\uFFFD x"}}}},
		{"escaped key", `{"a\"b":"c"}`, &Event{Headers: []Header{{`a"b`, "c"}}}},
		{"raw bytes kept", "{\"A\":\"\xff\xc3\x7f\"}", &Event{Headers: []Header{{"A", "\xff\xc3\x7f"}}}},
		{"whitespace", " { \"A\" : \"1\" , \"B\":[ \"x\" , \"y\" ] }\n", &Event{Headers: []Header{{"A", "1"}, {"B", "ARRAY::x|:y"}}}},
		{"numbers and booleans", `{"N":-1.5e3,"T":true,"F":false}`,
			&Event{Headers: []Header{{"N", "-1.5e3"}, {"T", "true"}, {"F", "false"}}}},
		{"empty object", `{}`, &Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !eventsEqual(got, tt.want) {
				t.Errorf("ParseJSON(%q): %s", tt.in, eventDiff(got, tt.want))
			}
		})
	}
}

func TestParseJSONErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"", "[]", "{", `{"A"}`, `{"A":}`, `{"A":"1",}`, `{"A":"1"} x`, `{"A":null}`,
		`{"A":{}}`, `{"A":[]}`, `{"A":["x",]}`, `{"A":[["x"]]}`, `{"A":"x`, "{\"A\":\"a\nb\"}",
		`{"A":"\x"}`, `{"A":"\u12"}`, `{"A":"\u12g4"}`, `{"A":1x}`, `{"A":"1" "B":"2"}`, `{"A":"1"`,
	} {
		if e, err := ParseJSON([]byte(in)); err == nil {
			t.Errorf("ParseJSON(%q) = %+v, want an error", in, e)
		}
	}
}

// TestDuplicateHeadersAllFormats: a repeated header survives encode and
// parse in every format, in place.
func TestDuplicateHeadersAllFormats(t *testing.T) {
	t.Parallel()
	e := &Event{Headers: []Header{
		{"Event-Name", "CHANNEL_HANGUP_COMPLETE"},
		{"Hangup-Cause", "NORMAL_CLEARING"},
		{"Other", "x"},
		{"Hangup-Cause", "NORMAL_CLEARING"},
		{"Hangup-Cause", "USER_BUSY"},
	}}
	for _, f := range []Format{Plain, JSON, XML} {
		got, err := parsePayload(f, AppendPayload(nil, f, e))
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if !eventsEqual(got, e) {
			t.Errorf("%v: %s", f, eventDiff(got, e))
		}
	}
}

func TestParseXML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    *Event
	}{
		{"body ending in newline", &Event{Headers: []Header{{"A", "x y"}}, Body: "+OK\n"}},
		{"body ending in newline and spaces", &Event{Headers: []Header{{"A", "1"}}, Body: "+OK\n  "}},
		{"body with markup and utf8", &Event{Headers: []Header{{"A", "1"}}, Body: "a&b<c>\r\"é€😀\n"}},
		{"no headers", &Event{Body: "x"}},
		{"no body", &Event{Headers: []Header{{"A", ""}, {"B", "<&>"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseXML(AppendPayload(nil, XML, tt.e))
			if err != nil {
				t.Fatal(err)
			}
			if !eventsEqual(got, tt.e) {
				t.Errorf("%s", eventDiff(got, tt.e))
			}
		})
	}
	for _, in := range []string{"", "<event>\n", "<event>\n  <headers>\n    <A>1</B>\n  </headers>\n</event>\n", "<event>\n  <headers></headers>\n</event>"} {
		if _, err := parseXML([]byte(in)); err == nil {
			t.Errorf("parseXML(%q): want an error", in)
		}
	}
}

func TestXMLUnescape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a&amp;b&lt;&gt;&quot;&apos;": `a&b<>"'`,
		"&#xD;&#xE9;&#233;&#X41;":     "\ré\u00e9A",
		"&bogus; & &#xZZ; &":          "&bogus; & &#xZZ; &",
		strings.Repeat("x", 3):        "xxx",
	} {
		if got := xmlUnescape(in); got != want {
			t.Errorf("xmlUnescape(%q) = %q, want %q", in, got, want)
		}
	}
}
