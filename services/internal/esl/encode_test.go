package esl

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The functions below transcribe how FreeSWITCH 1.10.12 parses the
// arguments of the `originate` API, to check encodeValue against the real
// parser rather than against our own idea of it. References are to
// signalwire/freeswitch at tag v1.10.12 (identical on master cc93a683):
//
//	mod_commands.c:5103      originate_function: switch_separate_string(mycmd, ' ', argv, 10)
//	switch_utils.c:2855      switch_separate_string: "^^<c>" changes the delimiter
//	switch_utils.c:2796      separate_string_blank_delim, then cleanup of each token
//	switch_utils.c:2753      separate_string_char_delim, then cleanup of each token
//	switch_utils.c:2687      cleanup_separated_string
//	switch_utils.c:2617      unescape_char
//	switch_utils.c:794       switch_find_end_paren
//	switch_ivr_originate.c:2305  {...} parsed by switch_event_create_brackets(data, '{', '}', ',')
//	switch_event.c:1664      switch_event_create_brackets: split on ',', then each item on '=' (2 parts)

func fsUnescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 's':
		return ' '
	}
	return c
}

func fsCleanup(s string, delim byte) string {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	var dest []byte
	end := -1
	inside := false
	for ; i < len(s); i++ {
		esc := false
		if s[i] == '\\' {
			var next byte
			if i+1 < len(s) {
				next = s[i+1]
			}
			e := next
			if next == '\'' || next == '"' || (delim != 0 && next == delim) || next == '\\' || fsUnescape(next) != next {
				if !(next == '\'' || next == '"' || (delim != 0 && next == delim) || next == '\\') {
					e = fsUnescape(next)
				}
				i++
				dest = append(dest, e)
				end = len(dest)
				esc = true
			}
		}
		if !esc {
			if s[i] == '\'' && (inside || strings.IndexByte(s[i+1:], '\'') >= 0) {
				inside = !inside
				if inside {
					end = len(dest)
				}
			} else {
				dest = append(dest, s[i])
				if s[i] != ' ' || inside {
					end = len(dest)
				}
			}
		}
	}
	if end < 0 {
		return ""
	}
	return string(dest[:end])
}

func fsSeparate(s string, delim byte, max int) []string {
	if len(s) >= 4 && s[0] == '^' && s[1] == '^' {
		delim, s = s[2], s[3:]
	}
	var toks []string
	if delim == ' ' {
		const (
			start = iota
			skipInitial
			findDelim
			skipEnding
		)
		state, inside, tokStart := start, false, 0
		p := 0
		for p < len(s) && len(toks) < max {
			switch state {
			case start:
				toks = append(toks, "")
				tokStart = p
				state = skipInitial
			case skipInitial:
				if s[p] == ' ' {
					p++
				} else {
					state = findDelim
				}
			case findDelim:
				switch {
				case s[p] == '\\':
					p++
				case s[p] == '\'':
					inside = !inside
				case s[p] == ' ' && !inside:
					toks[len(toks)-1] = s[tokStart:p]
					tokStart = -1
					state = skipEnding
				}
				p++
			case skipEnding:
				if s[p] == ' ' {
					p++
				} else {
					state = start
				}
			}
		}
		if tokStart >= 0 && len(toks) > 0 {
			toks[len(toks)-1] = s[tokStart:min(p, len(s))]
		}
		for i := range toks {
			toks[i] = fsCleanup(toks[i], 0)
		}
		return toks
	}
	inside, tokStart, p := false, 0, 0
	started := false
	for p < len(s) && len(toks) < max {
		if !started {
			toks = append(toks, "")
			tokStart = p
			started = true
			continue
		}
		switch {
		case s[p] == '\\':
			p++
		case s[p] == '\'' && (inside || strings.IndexByte(s[p+1:], '\'') >= 0):
			inside = !inside
		case s[p] == delim && !inside:
			toks[len(toks)-1] = s[tokStart:p]
			tokStart = -1
			started = false
		}
		p++
	}
	if tokStart >= 0 && len(toks) > 0 {
		toks[len(toks)-1] = s[tokStart:]
	}
	for i := range toks {
		toks[i] = fsCleanup(toks[i], delim)
	}
	return toks
}

func fsFindEndParen(s string, open, close byte) int {
	if len(s) == 0 || s[0] != open {
		return -1
	}
	depth := 1
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// fsParseOriginate returns the {global} variables, the dial string and the
// application FreeSWITCH would take from `originate <args>`.
func fsParseOriginate(t *testing.T, args string) (vars map[string]string, dial, app string) {
	t.Helper()
	argv := fsSeparate(args, ' ', 10)
	if len(argv) != 2 {
		t.Fatalf("originate splits into %d arguments %q, want 2", len(argv), argv)
	}
	aleg := argv[0]
	end := fsFindEndParen(aleg, '{', '}')
	if end < 0 {
		t.Fatalf("no {...} block in %q", aleg)
	}
	vars = map[string]string{}
	body := aleg[1:end]
	delim := byte(',')
	if len(body) >= 3 && body[0] == '^' && body[1] == '^' {
		delim, body = body[2], body[3:]
	}
	for _, item := range fsSeparate(body, delim, 1024) {
		kv := fsSeparate(item, '=', 2)
		if len(kv) == 2 {
			vars[kv[0]] = kv[1]
		}
	}
	return vars, aleg[end+1:], argv[1]
}

// valueCases are the awkward values every escaping test uses.
var valueCases = []string{
	"plain", "John Doe", "a,b", "a, b", ",,,", "O'Brien", "''", "'", `say "hi"`, `"`,
	" leading", "trailing ", "  both  ", " ", "back\\slash", `end\`, `\\`, `\'`, `\,`, `\s`, `\n literal`,
	"a=b=c", "=", "{json: {\"k\": [1, 2]}}", "tab\there", "ñ 漢字 ☎", "semi;colon|pipe&amp", "[bracket]<angle>",
	"100%", "$5 {not a var}", "^^:x", "it's a \"mix\", isn't it?",
}

func TestEncodeValueRoundTripsThroughFreeSWITCHParser(t *testing.T) {
	t.Parallel()
	for _, v := range valueCases {
		t.Run(v, func(t *testing.T) {
			enc, err := encodeValue(v)
			if err != nil {
				t.Fatalf("encodeValue(%q): %v", v, err)
			}
			args := "{origination_uuid=u1,x=" + enc + ",y=after}sofia/gateway/carrier/1 &park()"
			vars, dial, app := fsParseOriginate(t, args)
			if vars["x"] != v || vars["y"] != "after" || vars["origination_uuid"] != "u1" {
				t.Errorf("encoded as %s, FreeSWITCH would read x=%q y=%q uuid=%q; want x=%q", enc, vars["x"], vars["y"], vars["origination_uuid"], v)
			}
			if dial != "sofia/gateway/carrier/1" || app != "&park()" {
				t.Errorf("dial %q app %q", dial, app)
			}
		})
	}
}

// FuzzEncodeValue checks the round trip for arbitrary values: either
// encodeValue refuses the value with ErrInvalid, or FreeSWITCH reads back
// exactly what was encoded.
func FuzzEncodeValue(f *testing.F) {
	for _, v := range valueCases {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		enc, err := encodeValue(v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("encodeValue(%q): %v", v, err)
			}
			return
		}
		vars, _, _ := fsParseOriginate(t, "{origination_uuid=u1,x="+enc+",y=after}null/1 &park()")
		if vars["x"] != v || vars["y"] != "after" {
			t.Fatalf("value %q encoded as %q reads back as x=%q y=%q", v, enc, vars["x"], vars["y"])
		}
	})
}

// TestFreeSWITCHParserTranscription pins the transcription to what the
// captures show, so the oracle above is not just our own guess.
func TestFreeSWITCHParserTranscription(t *testing.T) {
	t.Parallel()
	// Capture 14: a quoted space arrives without the quotes.
	vars, _, _ := fsParseOriginate(t, "{origination_uuid=d4,origination_caller_id_number=1000,origination_caller_id_name='Plain Tester'}sofia/internal/15551234567@127.0.0.1:5090 &park")
	if got := vars["origination_caller_id_name"]; got != "Plain Tester" {
		t.Errorf("capture 14: got %q", got)
	}
	// Capture 16: an unquoted space splits the command into three
	// arguments, which FreeSWITCH rejects.
	if argv := fsSeparate("{a=1,b=Plain Tester}sofia/internal/1 &park", ' ', 10); len(argv) != 3 {
		t.Errorf("capture 16: %d arguments %q, want 3", len(argv), argv)
	}
	// Capture 29: a quoted value with spaces and a '+'.
	vars, _, _ = fsParseOriginate(t, "{origination_uuid=29,execute_on_answer='sched_hangup +2 ALLOTTED_TIMEOUT'}sofia/internal/2902@127.0.0.1:5090 &park")
	if got := vars["execute_on_answer"]; got != "sched_hangup +2 ALLOTTED_TIMEOUT" {
		t.Errorf("capture 29: got %q", got)
	}
	// Quotes are stripped by the first (space) split, so they do not
	// protect a comma from the second: the reason encodeValue uses \,.
	vars, _, _ = fsParseOriginate(t, "{origination_uuid=u,b='x,y'}null/1 &park()")
	if got := vars["b"]; got != "x" {
		t.Errorf("quoted comma: FreeSWITCH reads b=%q, the transcription says otherwise", got)
	}
}

func TestOriginateCommand(t *testing.T) {
	t.Parallel()
	got, err := OriginateRequest{
		UUID: "6f1b1c7e-0000-4000-8000-000000000001", Dialstring: "sofia/gateway/carrier/15551230000",
		CallerIDNumber: "15550001111", CallerIDName: "Acme Sales", Timeout: 1500 * time.Millisecond,
		Vars: map[string]string{"ringback_call_id": "c-42", "note": "a,b"},
	}.command()
	if err != nil {
		t.Fatal(err)
	}
	want := `originate {origination_uuid=6f1b1c7e-0000-4000-8000-000000000001,note=a\\,b,originate_timeout=2,` +
		`origination_caller_id_name='Acme Sales',origination_caller_id_number=15550001111,` +
		`ringback_call_id=c-42}sofia/gateway/carrier/15551230000 &park()`
	if got != want {
		t.Errorf("command:\n got %s\nwant %s", got, want)
	}

	bad := []struct {
		name string
		req  OriginateRequest
	}{
		{"no dialstring", OriginateRequest{}},
		{"space in dialstring", OriginateRequest{Dialstring: "sofia/gateway/carrier/1 2"}},
		{"quote in dialstring", OriginateRequest{Dialstring: "sofia/gateway/carrier/'1"}},
		{"global vars in dialstring", OriginateRequest{Dialstring: "{a=b}sofia/gateway/carrier/1"}},
		{"space in app", OriginateRequest{Dialstring: "null/1", App: "&playback(a b)"}},
		{"bad uuid", OriginateRequest{Dialstring: "null/1", UUID: "x y"}},
		{"bad var name", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"a b": "1"}}},
		{"origination_uuid in vars", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"origination_uuid": "1"}}},
		{"caller id twice", OriginateRequest{Dialstring: "null/1", CallerIDNumber: "1", Vars: map[string]string{"origination_caller_id_number": "2"}}},
		{"newline in value", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"a": "x\nbgapi hupall"}}},
		{"unbalanced brace", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"a": "x}y"}}},
		{"variable expansion", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"a": "${system(rm -rf /)}"}}},
		{"escaped variable expansion", OriginateRequest{Dialstring: "null/1", Vars: map[string]string{"a": `$\{x}`}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if tc.req.UUID == "" {
				tc.req.UUID = NewUUID()
			}
			if _, err := tc.req.command(); !errors.Is(err, ErrInvalid) {
				t.Errorf("command() error = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	lo, hi := 100*time.Millisecond, 5*time.Second
	for k, base := range []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000} {
		base *= time.Millisecond
		if got := backoff(lo, hi, k+1, 0); got != base/2 {
			t.Errorf("attempt %d, r=0: %s, want %s", k+1, got, base/2)
		}
		if got := backoff(lo, hi, k+1, 0.999999); got < base*99/100 || got > base {
			t.Errorf("attempt %d, r=1: %s, want ~%s", k+1, got, base)
		}
	}
}
