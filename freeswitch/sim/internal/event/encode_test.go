package event

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestURLEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"safe punctuation", ",/'()!*$-._~", ",/'()!*$-._~"},
		{"alphanumerics", "AZaz09", "AZaz09"},
		{"date", "Sun, 22 Nov 2026 02:26:06 GMT", "Sun,%2022%20Nov%202026%2002%3A26%3A06%20GMT"},
		{"sip uri", "sip:mod_sofia@127.0.0.1:5090", "sip%3Amod_sofia%40127.0.0.1%3A5090"},
		{"originate", "{origination_uuid=x}sofia/internal/1@h &park", "%7Borigination_uuid%3Dx%7Dsofia/internal/1%40h%20%26park"},
		{"ipv6", "fd00::2", "fd00%3A%3A2"},
		{"caller id", `"Outbound Call" <1000>`, "%22Outbound%20Call%22%20%3C1000%3E"},
		{"crlf", "a\r\nb", "a%0D%0Ab"},
		{"tab and del", "\t\x7f", "%09%7F"},
		{"utf8 2 byte", "é", "%C3%A9"},
		{"utf8 3 byte", "€", "%E2%82%AC"},
		{"utf8 4 byte", "😀", "%F0%9F%98%80"},
		{"invalid utf8", "\xff\x80", "%FF%80"},
		{"nul ends string", "ab\x00:cd", "ab"},
		{"leading nul", "\x00abc", ""},
		// switch_url_encode does not double-encode: '%' followed by two
		// upper-case hex digits is copied.
		{"percent before upper hex", "%3A", "%3A"},
		{"percent before lower hex", "%3a", "%253a"},
		{"percent before one hex at end", "%3", "%253"},
		{"percent at end", "100%", "100%25"},
		{"percent alone", "%", "%25"},
		{"double percent", "%%41", "%25%41"},
		{"percent before non hex", "%G1", "%25G1"},
		{"percent hex then nul", "%4\x001", "%254"},
		{"encoded value stays", "sip%3Afoo%40bar", "sip%3Afoo%40bar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(URLEncode(nil, tt.in)); got != tt.want {
				t.Errorf("URLEncode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := string(URLEncode([]byte("x"), tt.in)); got != "x"+tt.want {
				t.Errorf("URLEncode after prefix = %q, want %q", got, "x"+tt.want)
			}
		})
	}
}

// TestURLEncodeEveryByte checks each byte on its own against
// SWITCH_URL_UNSAFE written out independently of the encoder's table.
func TestURLEncodeEveryByte(t *testing.T) {
	t.Parallel()
	unsafe := []byte{'\r', '\n', ' ', '#', '%', '&', '+', ':', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '^', '`', '{', '|', '}', '"'}
	for c := 1; c < 256; c++ {
		want := string([]byte{byte(c)})
		if c < 0x20 || c > 0x7e || bytes.IndexByte(unsafe, byte(c)) >= 0 {
			want = fmt.Sprintf("%%%02X", c)
		}
		if got := string(URLEncode(nil, string([]byte{byte(c)}))); got != want {
			t.Errorf("URLEncode(%#02x) = %q, want %q", c, got, want)
		}
	}
}

func TestJSONString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "abc", `"abc"`},
		{"quote", `say "hi"`, `"say \"hi\""`},
		{"backslash", `pagd \d+`, `"pagd \\d+"`},
		{"slash not escaped", "sip:a@b/c", `"sip:a@b/c"`},
		{"letter escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"other controls", "\x01\x1f\x0b", `"\u0001\u001f\u000b"`},
		{"del raw", "\x7f", "\"\x7f\""},
		{"utf8 raw", "é€😀", `"é€😀"`},
		{"invalid utf8 raw", "\xff\xc3", "\"\xff\xc3\""},
		{"body with newline", "+OK 1234\n", `"+OK 1234\n"`},
		{"nul ends string", "a\x00\"b", `"a"`},
		{"no url encoding", "fd00::2 {x=y}", `"fd00::2 {x=y}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(appendJSONString(nil, tt.in)); got != tt.want {
				t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestXMLText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "+OK abc", "+OK abc"},
		{"markup", `a&b<c>d"e`, `a&amp;b&lt;c&gt;d"e`},
		{"whitespace", "a\tb\nc\rd", "a\tb\nc&#xD;d"},
		{"utf8 2 byte", "é", "&#xE9;"},
		{"utf8 3 byte", "€", "&#x20AC;"},
		{"utf8 4 byte", "😀", "&#x1F600;"},
		{"stray continuation dropped", "a\x80b", "ab"},
		{"broken sequence drops next ascii", "\xc3Ab", "b"},
		{"markup inside sequence kept", "\xc3&\xa9", "&amp;&#xE9;"},
		{"unfinished at end dropped", "ab\xe2\x82", "ab"},
		{"comment turns verbatim", "a<!x&é>\rb", "a<!x&é>\rb"},
		{"lt at end", "a<", "a&lt;"},
		{"nul ends text", "a\x00&", "a"},
		{"overlong nul", "\xc0\x80", "&#x0;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(appendXMLText(nil, tt.in)); got != tt.want {
				t.Errorf("appendXMLText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestPayloadShapes pins the exact layout of each format on small events:
// duplicate headers, empty values, array headers, body or no body.
func TestPayloadShapes(t *testing.T) {
	t.Parallel()
	dup := &Event{Headers: []Header{
		{"Event-Name", "CHANNEL_HANGUP_COMPLETE"},
		{"Hangup-Cause", "NORMAL_CLEARING"},
		{"Caller-ID", `"A B" <1>`},
		{"Hangup-Cause", "USER_BUSY"},
	}}
	withBody := &Event{Headers: []Header{{"Event-Name", "BACKGROUND_JOB"}, {"Job-Command", "status"}}, Body: "+OK a&b\n"}
	bodyNoNewline := &Event{Headers: []Header{{"Event-Name", "BACKGROUND_JOB"}}, Body: "true"}
	emptyValue := &Event{Headers: []Header{{"Event-Name", "CUSTOM"}, {"Empty", ""}, {"Nul", "\x00x"}}}
	array := &Event{Headers: []Header{{"variable_DP_MATCH", "ARRAY::6002|:6002"}, {"One", "ARRAY::x"}, {"Short", "ARRAY::"}}}
	bodyOnly := &Event{Body: "x"}
	empty := &Event{}

	tests := []struct {
		name   string
		e      *Event
		format Format
		want   string
	}{
		{"plain dup", dup, Plain, "Event-Name: CHANNEL_HANGUP_COMPLETE\nHangup-Cause: NORMAL_CLEARING\nCaller-ID: %22A%20B%22%20%3C1%3E\nHangup-Cause: USER_BUSY\n\n"},
		{"json dup", dup, JSON, `{"Event-Name":"CHANNEL_HANGUP_COMPLETE","Hangup-Cause":"NORMAL_CLEARING","Caller-ID":"\"A B\" <1>","Hangup-Cause":"USER_BUSY"}`},
		{"xml dup", dup, XML, "<event>\n  <headers>\n    <Event-Name>CHANNEL_HANGUP_COMPLETE</Event-Name>\n    <Hangup-Cause>NORMAL_CLEARING</Hangup-Cause>\n    <Caller-ID>%22A%20B%22%20%3C1%3E</Caller-ID>\n    <Hangup-Cause>USER_BUSY</Hangup-Cause>\n  </headers>\n</event>\n"},

		{"plain body", withBody, Plain, "Event-Name: BACKGROUND_JOB\nJob-Command: status\nContent-Length: 8\n\n+OK a&b\n"},
		{"json body", withBody, JSON, `{"Event-Name":"BACKGROUND_JOB","Job-Command":"status","Content-Length":"8","_body":"+OK a&b\n"}`},
		{"xml body", withBody, XML, "<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n    <Job-Command>status</Job-Command>\n  </headers>\n  <Content-Length>8</Content-Length>\n  <body>+OK a&amp;b\n  </body>\n</event>\n"},

		{"plain body without newline", bodyNoNewline, Plain, "Event-Name: BACKGROUND_JOB\nContent-Length: 4\n\ntrue"},
		{"xml body without newline", bodyNoNewline, XML, "<event>\n  <headers>\n    <Event-Name>BACKGROUND_JOB</Event-Name>\n  </headers>\n  <Content-Length>4</Content-Length>\n  <body>true</body>\n</event>\n"},

		{"plain empty value", emptyValue, Plain, "Event-Name: CUSTOM\nEmpty: _undef_\nNul: _undef_\n\n"},
		{"json empty value", emptyValue, JSON, `{"Event-Name":"CUSTOM","Empty":"","Nul":""}`},
		{"xml empty value", emptyValue, XML, "<event>\n  <headers>\n    <Event-Name>CUSTOM</Event-Name>\n    <Empty></Empty>\n    <Nul></Nul>\n  </headers>\n</event>\n"},

		{"plain array", array, Plain, "variable_DP_MATCH: ARRAY%3A%3A6002%7C%3A6002\nOne: ARRAY%3A%3Ax\nShort: ARRAY%3A%3A\n\n"},
		{"json array", array, JSON, `{"variable_DP_MATCH":["6002","6002"],"One":["x"],"Short":"ARRAY::"}`},
		{"xml array", array, XML, "<event>\n  <headers>\n    <variable_DP_MATCH>6002</variable_DP_MATCH>\n    <variable_DP_MATCH>6002</variable_DP_MATCH>\n    <One>x</One>\n    <Short>ARRAY%3A%3A</Short>\n  </headers>\n</event>\n"},

		{"plain body only", bodyOnly, Plain, "Content-Length: 1\n\nx"},
		{"json body only", bodyOnly, JSON, `{"Content-Length":"1","_body":"x"}`},
		{"xml body only", bodyOnly, XML, "<event>\n  <headers></headers>\n  <Content-Length>1</Content-Length>\n  <body>x</body>\n</event>\n"},

		{"plain empty", empty, Plain, "\n"},
		{"json empty", empty, JSON, `{}`},
		{"xml empty", empty, XML, "<event>\n  <headers></headers>\n</event>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := string(AppendPayload(nil, tt.format, tt.e)); got != tt.want {
				t.Errorf("AppendPayload(%v) =\n%q\nwant\n%q", tt.format, got, tt.want)
			}
			frame := string(AppendFrame(nil, tt.format, tt.e))
			head := "Content-Length: " + strconv.Itoa(len(tt.want)) + "\nContent-Type: " + tt.format.ContentType() + "\n\n"
			if frame != head+tt.want {
				t.Errorf("AppendFrame(%v) =\n%q\nwant\n%q", tt.format, frame, head+tt.want)
			}
		})
	}
}

// TestEmptyBodyIsNoBody: an empty Body means "no body" in every format.
func TestEmptyBodyIsNoBody(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{Plain, JSON, XML} {
		a := AppendPayload(nil, f, &Event{Headers: []Header{{"A", "1"}}})
		b := AppendPayload(nil, f, &Event{Headers: []Header{{"A", "1"}}, Body: ""})
		c := AppendPayload(nil, f, &Event{Headers: []Header{{"A", "1"}}, Body: "\x00tail"})
		if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
			t.Errorf("%v: empty body and NUL-led body must encode like no body: %q %q %q", f, a, b, c)
		}
		if bytes.Contains(a, []byte("Content-Length")) {
			t.Errorf("%v: body-less event has a Content-Length: %q", f, a)
		}
	}
}

// TestAppendFrameLengths drives payload sizes across the Content-Length
// width the encoder guesses, in both directions, with and without spare
// capacity and with bytes already in dst.
func TestAppendFrameLengths(t *testing.T) {
	t.Parallel()
	for _, f := range []Format{Plain, JSON, XML} {
		for _, n := range []int{0, 1, 5, 9, 10, 99, 100, 900, 999, 1000, 5000, 9999, 10000, 99999, 100000, 1 << 20} {
			t.Run(fmt.Sprintf("%v/%d", f, n), func(t *testing.T) {
				t.Parallel()
				e := &Event{Headers: []Header{{"Event-Name", "CUSTOM"}}, Body: strings.Repeat("b", n)}
				payload := AppendPayload(nil, f, e)
				want := "Content-Length: " + strconv.Itoa(len(payload)) + "\nContent-Type: " + f.ContentType() + "\n\n" + string(payload)
				for _, dst := range [][]byte{nil, []byte("prefix"), make([]byte, 3, len(want)+3), make([]byte, 0, len(want)+100)} {
					pre := string(dst)
					got := string(AppendFrame(dst, f, e))
					if got != pre+want {
						t.Fatalf("frame with dst %q (cap %d):\n%s", pre, cap(dst), firstDiff([]byte(got), []byte(pre+want)))
					}
				}
			})
		}
	}
}

// TestAppendFrameNoAlloc: with room in dst the encoders do not allocate.
func TestAppendFrameNoAlloc(t *testing.T) {
	frames := loadGolden(t)
	var e *Event
	for _, g := range frames {
		if strings.HasSuffix(g.path, "_CHANNEL_HANGUP_COMPLETE.frame") {
			f, payload, err := splitFrame(g.frame)
			if err != nil {
				t.Fatal(err)
			}
			if e, err = parsePayload(f, payload); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	e.Body = "+OK é & <x>\n" // exercise every body path too
	dst := make([]byte, 0, 1<<16)
	for _, f := range []Format{Plain, JSON, XML} {
		if n := testing.AllocsPerRun(100, func() { dst = AppendFrame(dst[:0], f, e) }); n != 0 {
			t.Errorf("AppendFrame(%v) allocates %v times per call", f, n)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Format
		ok   bool
		ct   string
	}{
		{"plain", Plain, true, "text/event-plain"},
		{"json", JSON, true, "text/event-json"},
		{"xml", XML, true, "text/event-xml"},
		{"JSON", JSON, true, "text/event-json"},
		{"Xml", XML, true, "text/event-xml"},
		{"PLAIN", Plain, true, "text/event-plain"},
		{"ALL", Plain, false, ""},
		{"", Plain, false, ""},
		{"jsonx", Plain, false, ""},
	}
	for _, tt := range tests {
		f, ok := ParseFormat(tt.in)
		if f != tt.want || ok != tt.ok {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, %v", tt.in, f, ok, tt.want, tt.ok)
		}
		if ok {
			if f.ContentType() != tt.ct || f.String() != strings.ToLower(tt.in) {
				t.Errorf("%v: String %q ContentType %q", f, f.String(), f.ContentType())
			}
		}
	}
	if s := Format(7).String(); s != "Format(7)" {
		t.Errorf("Format(7).String() = %q", s)
	}
}

func TestAppendPayloadBadFormat(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("AppendPayload with an invalid Format did not panic")
		}
	}()
	AppendPayload(nil, Format(3), &Event{})
}

func TestEventMethods(t *testing.T) {
	t.Parallel()
	e := &Event{}
	e.Add("Event-Name", "CHANNEL_HANGUP_COMPLETE")
	e.Add("Hangup-Cause", "NORMAL_CLEARING")
	e.Add("Hangup-Cause", "USER_BUSY")
	if got := e.Name(); got != "CHANNEL_HANGUP_COMPLETE" {
		t.Errorf("Name() = %q", got)
	}
	if got := e.Get("Hangup-Cause"); got != "NORMAL_CLEARING" {
		t.Errorf("Get returns %q, want the first value", got)
	}
	if got := e.Get("hangup-cause"); got != "NORMAL_CLEARING" {
		t.Errorf("Get is not case-insensitive: %q", got)
	}
	if got := e.Get("Missing"); got != "" {
		t.Errorf("Get(Missing) = %q", got)
	}
	if got := (&Event{}).Name(); got != "" {
		t.Errorf("empty Name() = %q", got)
	}

	e.Body = "b"
	c := e.Clone()
	if !eventsEqual(c, e) {
		t.Fatalf("Clone differs: %+v", c)
	}
	c.Headers[0].Value = "CHANGED"
	c.Add("New", "1")
	if e.Name() != "CHANNEL_HANGUP_COMPLETE" || len(e.Headers) != 3 {
		t.Errorf("changing the clone changed the original: %+v", e)
	}
	if c := (&Event{}).Clone(); c.Headers != nil || c.Body != "" {
		t.Errorf("clone of empty event: %+v", c)
	}
}
