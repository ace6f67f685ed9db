package conformance

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fsURLEncode is FreeSWITCH's switch_url_encode (switch_utils.c,
// switch_url_encode_opt with double_encode off): bytes outside ' '..'~' and
// those in SWITCH_URL_UNSAFE ("\r\n #%&+:;<=>?@[\\]^`{|}\"", switch_utils.h)
// become %XX, except a '%' already followed by two hex digits.
func fsURLEncode(s string) string {
	const unsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '%' && i+2 < len(s) && strings.IndexByte(hex, s[i+1]) >= 0 && strings.IndexByte(hex, s[i+2]) >= 0 {
			b.WriteByte(ch)
			continue
		}
		if ch < ' ' || ch > '~' || strings.IndexByte(unsafe, ch) >= 0 {
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&0x0f])
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// The JSON event frame: Content-Length first, then Content-Type (captures,
// every event frame); JSON without trailing newline; every value a string;
// values not URL-encoded; CHANNEL_HANGUP_COMPLETE carries Hangup-Cause twice.
func TestEventJSONFraming(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	a := newUUID()
	job := c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+" &park", "")
	c.WaitEvent("CHANNEL_ANSWER", isEvent("CHANNEL_ANSWER", a))
	c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	wantBody(t, "uuid_kill", c.API("uuid_kill "+a), "+OK\n")
	hc := hangupComplete(c, a)

	for _, e := range c.Events() {
		f := e.Frame
		if e.ParseErr != nil {
			t.Errorf("%s: JSON does not parse as a flat object of strings: %v", e, e.ParseErr)
			continue
		}
		wantHead := "Content-Length: " + strconv.Itoa(len(f.Body)) + "\nContent-Type: text/event-json\n\n"
		if !bytes.HasPrefix(f.Raw, []byte(wantHead)) || len(f.Headers) != 2 {
			t.Errorf("%s: want header block %q, got %q", e, wantHead, f.Raw[:min(len(f.Raw), 80)])
		}
		if bytes.HasSuffix(f.Body, []byte("\n")) {
			t.Errorf("%s: JSON body ends with a newline; FreeSWITCH's has none", e)
		}
		if !bytes.HasPrefix(f.Body, []byte(`{"Event-Name":"`)) {
			t.Errorf("%s: JSON body should start with Event-Name, got %q", e, f.Body[:min(len(f.Body), 40)])
		}
		// Values are not URL-encoded in JSON: Event-Date-Local has a space and colons.
		if d := e.Get("Event-Date-Local"); !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`).MatchString(d) {
			t.Errorf("%s: Event-Date-Local = %q, want plain \"YYYY-MM-DD hh:mm:ss\"", e, d)
		}
		// No captured event has a header with an empty value (FreeSWITCH
		// leaves empty caller-profile fields out, see switch_caller.c
		// switch_caller_profile_event_set_data).
		for _, h := range e.Headers {
			if h.Value == "" {
				t.Errorf("%s: header %s has an empty value; FreeSWITCH omits empty headers", e, h.Key)
			}
		}
		for _, k := range []string{"Core-UUID", "FreeSWITCH-Hostname", "Event-Date-GMT", "Event-Date-Timestamp", "Event-Calling-File", "Event-Calling-Function", "Event-Sequence"} {
			if !e.Has(k) {
				t.Errorf("%s: header %s missing", e, k)
			}
		}
	}
	if v := hc.Values("Hangup-Cause"); len(v) != 2 || v[0] != "NORMAL_CLEARING" || v[1] != "NORMAL_CLEARING" {
		t.Errorf("CHANNEL_HANGUP_COMPLETE: want Hangup-Cause twice (NORMAL_CLEARING, NORMAL_CLEARING) as in every captured HANGUP_COMPLETE, got %q", v)
	}
	if !strings.Contains(string(hc.Frame.Body), `"Caller-Channel-Name":"sofia/`) {
		t.Errorf("CHANNEL_HANGUP_COMPLETE: Caller-Channel-Name should be an unescaped sofia/... value")
	}
}

// Capture 14: `event plain` frames; values URL-encoded exactly like
// switch_url_encode; the BACKGROUND_JOB body follows a Content-Length line
// inside the event.
func TestEventPlainIsURLEncoded(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled plain" {
		t.Fatalf("event plain: %s", f)
	}
	a := newUUID()
	arg := "{origination_uuid=" + a + ",origination_caller_id_number=1000,origination_caller_id_name='Plain Tester'}" + carrier(numAnswer) + " &park"
	job := c.BgAPI("originate "+arg, "")
	bj := c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	c.WaitEvent("CHANNEL_ANSWER", isEvent("CHANNEL_ANSWER", a))
	wantBody(t, "uuid_kill", c.API("uuid_kill "+a), "+OK\n")
	hangupComplete(c, a)

	for _, e := range c.Events() {
		if e.Format != "plain" {
			t.Errorf("%s: Content-Type %s, want text/event-plain", e, e.Frame.ContentType())
			continue
		}
		if e.ParseErr != nil {
			t.Errorf("%s: %v", e, e.ParseErr)
			continue
		}
		wantHead := "Content-Length: " + strconv.Itoa(len(e.Frame.Body)) + "\nContent-Type: text/event-plain\n\n"
		if !bytes.HasPrefix(e.Frame.Raw, []byte(wantHead)) {
			t.Errorf("%s: want header block %q", e, wantHead)
		}
		for _, h := range e.Raw {
			if h.Key == "Content-Length" {
				continue
			}
			if want := fsURLEncode(e.Get(h.Key)); h.Value != want && h.Value != "_undef_" {
				t.Errorf("%s: %s on the wire is %q, switch_url_encode gives %q", e, h.Key, h.Value, want)
			}
		}
	}
	// Values seen in capture 14.
	if got, want := bj.RawValue("Job-Command-Arg"), fsURLEncode(arg); got != want {
		t.Errorf("BACKGROUND_JOB Job-Command-Arg on the wire: want %q, got %q", want, got)
	}
	if !strings.HasPrefix(bj.RawValue("Job-Command-Arg"), "%7Borigination_uuid%3D") {
		t.Errorf("BACKGROUND_JOB Job-Command-Arg should start %%7Borigination_uuid%%3D as in capture 14, got %q", bj.RawValue("Job-Command-Arg"))
	}
	wantBodyText := "+OK " + a + "\n"
	if bj.Body != wantBodyText {
		t.Errorf("BACKGROUND_JOB plain body: want %q, got %q", wantBodyText, bj.Body)
	}
	if !strings.HasSuffix(string(bj.Frame.Body), "\nContent-Length: "+strconv.Itoa(len(wantBodyText))+"\n\n"+wantBodyText) {
		t.Errorf("BACKGROUND_JOB plain frame should end with \"Content-Length: %d\\n\\n%s\", got %q", len(wantBodyText), wantBodyText, tail(string(bj.Frame.Body), 120))
	}
	create := c.WaitEvent("CHANNEL_CREATE", isEvent("CHANNEL_CREATE", a))
	if got := create.RawValue("Caller-Caller-ID-Name"); got != "Plain%20Tester" {
		t.Errorf("CHANNEL_CREATE Caller-Caller-ID-Name on the wire: want %q (capture 14), got %q", "Plain%20Tester", got)
	}
	if got := create.RawValue("Event-Date-Local"); !regexp.MustCompile(`^\d{4}-\d\d-\d\d%20\d\d%3A\d\d%3A\d\d$`).MatchString(got) {
		t.Errorf("CHANNEL_CREATE Event-Date-Local on the wire: want YYYY-MM-DD%%20hh%%3Amm%%3Ass, got %q", got)
	}
}

// Capture 15: `event xml` frames; headers under <event><headers>, values
// URL-encoded; BACKGROUND_JOB body in <body> after <Content-Length>.
func TestEventXMLFormat(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event xml CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled xml" {
		t.Fatalf("event xml: %s", f)
	}
	a := newUUID()
	job := c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+" &park", "")
	bj := c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	c.WaitEvent("CHANNEL_ANSWER", isEvent("CHANNEL_ANSWER", a))
	wantBody(t, "uuid_kill", c.API("uuid_kill "+a), "+OK\n")
	hangupComplete(c, a)
	for _, e := range c.Events() {
		if e.Format != "xml" || e.ParseErr != nil {
			t.Errorf("%s: want a well-formed text/event-xml frame, got %s (%v)", e, e.Frame.ContentType(), e.ParseErr)
			continue
		}
		if !bytes.HasPrefix(e.Frame.Body, []byte("<event>\n  <headers>\n    <Event-Name>")) {
			t.Errorf("%s: XML should start \"<event>\\n  <headers>\\n    <Event-Name>\" as in capture 15, got %q", e, e.Frame.Body[:min(40, len(e.Frame.Body))])
		}
		for _, h := range e.Raw {
			if h.Key == "Content-Length" {
				continue
			}
			if want := fsURLEncode(e.Get(h.Key)); h.Value != want {
				t.Errorf("%s: <%s> is %q, switch_url_encode gives %q", e, h.Key, h.Value, want)
			}
		}
	}
	// Capture 15: the body keeps FreeSWITCH's XML indentation and the
	// document ends with a newline.
	wantTail := "  <Content-Length>41</Content-Length>\n  <body>+OK " + a + "\n  </body>\n</event>\n"
	if !strings.HasSuffix(string(bj.Frame.Body), wantTail) {
		t.Errorf("BACKGROUND_JOB xml: want the document to end with %q (capture 15), got %q", wantTail, tail(string(bj.Frame.Body), 120))
	}
	if !strings.HasPrefix(bj.Body, "+OK "+a+"\n") {
		t.Errorf("BACKGROUND_JOB <body>: want %q, got %q", "+OK "+a+"\n", bj.Body)
	}
}

// Capture 06 and README: bgapi replies "+OK Job-UUID: <id>" with a Job-UUID
// header; a Job-UUID header sent with the command is used; BACKGROUND_JOB has
// Job-UUID, Job-Command, Job-Command-Arg (absent when there is no argument),
// Content-Length and the body in _body.
func TestBgapiJobUUIDAndBackgroundJob(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	{ // server-chosen id, originate error
		cmdArg := "sofia/gateway/nosuchgw/15551234567 &park"
		id := c.BgAPI("originate "+cmdArg, "")
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id) {
			t.Errorf("Job-UUID %q is not a UUID", id)
		}
		e := c.WaitEvent("BACKGROUND_JOB "+id, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == id })
		wantHeader(t, e, "Job-Command", "originate")
		wantHeader(t, e, "Job-Command-Arg", cmdArg)
		wantHeader(t, e, "Content-Length", "21")
		if e.Body != "-ERR INVALID_GATEWAY\n" {
			t.Errorf("BACKGROUND_JOB _body: want %q, got %q", "-ERR INVALID_GATEWAY\n", e.Body)
		}
		if !strings.HasSuffix(string(e.Frame.Body), `"Content-Length":"21","_body":"-ERR INVALID_GATEWAY\n"}`) {
			t.Errorf("BACKGROUND_JOB JSON should end with Content-Length then _body as captured, got %q", tail(string(e.Frame.Body), 80))
		}
	}
	{ // caller-chosen id, no argument
		id := newUUID()
		f := c.Cmd("bgapi status", "Job-UUID: "+id)
		want := fmt.Sprintf("Content-Type: command/reply\nReply-Text: +OK Job-UUID: %s\nJob-UUID: %s\n\n", id, id)
		if string(f.Raw) != want {
			t.Errorf("bgapi with Job-UUID header: want %q, got %q", want, f.Raw)
		}
		e := c.WaitEvent("BACKGROUND_JOB "+id, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == id })
		wantHeader(t, e, "Job-Command", "status")
		wantNoHeader(t, e, "Job-Command-Arg")
		if !statusRE.MatchString(e.Body) {
			t.Errorf("BACKGROUND_JOB of status: body does not have the status shape: %q", e.Body)
		}
		wantHeader(t, e, "Content-Length", strconv.Itoa(len(e.Body)))
	}
	{ // originate success body
		a := newUUID()
		id := c.BgAPI("originate {origination_uuid="+a+"}"+carrier(numAnswer)+" &park", "")
		e := c.WaitEvent("BACKGROUND_JOB "+id, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == id })
		if e.Body != "+OK "+a+"\n" {
			t.Errorf("BACKGROUND_JOB _body: want %q, got %q", "+OK "+a+"\n", e.Body)
		}
		wantBody(t, "uuid_kill", c.API("uuid_kill "+a), "+OK\n")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
