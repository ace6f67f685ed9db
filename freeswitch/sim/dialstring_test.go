package sim

import (
	"reflect"
	"testing"
)

// The expectations below follow signalwire/freeswitch v1.10.12:
// switch_utils.c (switch_separate_string, separate_string_blank_delim,
// separate_string_char_delim, cleanup_separated_string, unescape_char,
// switch_find_end_paren), switch_event.c (switch_event_create_brackets),
// switch_ivr_originate.c (switch_ivr_originate) and mod_commands.c
// (originate_function). The comment opening the parsing code in
// originate.go describes the layers an originate argument goes through.

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain", "sofia/gateway/carrier/1 &park", []string{"sofia/gateway/carrier/1", "&park"}},
		// Runs of spaces separate; leading and trailing ones make no token.
		{"outer and repeated spaces", "  a   b  ", []string{"a", "b"}},
		{"empty", "", nil},
		{"only spaces", "   ", []string{""}}, // one token, empty after cleanup
		// Capture 14: the quotes protect the space and are removed.
		{"capture 14",
			"{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_number=1000,origination_caller_id_name='Plain Tester'}sofia/internal/15551234567@127.0.0.1:5090 &park",
			[]string{"{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_number=1000,origination_caller_id_name=Plain Tester}sofia/internal/15551234567@127.0.0.1:5090", "&park"}},
		// Capture 16: an unquoted space splits even inside {}.
		{"capture 16",
			"{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_number=1000,origination_caller_id_name=Plain Tester}sofia/internal/15551234567@127.0.0.1:5090 &park",
			[]string{"{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_number=1000,origination_caller_id_name=Plain", "Tester}sofia/internal/15551234567@127.0.0.1:5090", "&park"}},
		// Quotes are removed here already, so they no longer protect the
		// comma from the {} split that follows.
		{"quoted comma loses its quotes", "{x='a,b'}null/1 &park", []string{"{x=a,b}null/1", "&park"}},
		// cleanup_separated_string: \' \\ \s are escapes for every layer...
		{"escaped quote", `{x=O\'Brien}null/1 &park`, []string{"{x=O'Brien}null/1", "&park"}},
		{"escaped backslash", `{x=a\\,b}null/1 &park`, []string{`{x=a\,b}null/1`, "&park"}},
		{"escaped s is a space", `{x=a\sb}null/1 &park`, []string{"{x=a b}null/1", "&park"}},
		// ... but the delimiter is escapable only when it is not the blank
		// one (delim is 0 then), so "\," and "\ " keep their backslash.
		// The scan still skips the byte after a backslash: "\ " does not
		// split.
		{"backslash comma kept", `{x=a\,b}null/1 &park`, []string{`{x=a\,b}null/1`, "&park"}},
		{"backslash space kept and does not split", `{x=a\ b}null/1 &park`, []string{`{x=a\ b}null/1`, "&park"}},
		// separate_string_blank_delim toggles quoting on every quote, so
		// the space after an unmatched one does not split; cleanup keeps a
		// quote with no other one after it.
		{"unmatched quote", "O'Brien x", []string{"O'Brien x"}},
		{"unmatched quote swallows the rest", "{b=O'Brien}null/1 &park", []string{"{b=O'Brien}null/1 &park"}},
		{"quoted empty string", "'' &park", []string{"", "&park"}},
		{"quotes inside a word", "a'b c'd e", []string{"ab cd", "e"}},
		// Double quotes are not quotes.
		{"double quotes", `"a b"`, []string{`"a`, `b"`}},
		// argv[10]: the tenth token takes the rest.
		{"at most 10 tokens", "1 2 3 4 5 6 7 8 9 10 11 12", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10 11 12"}},
		// switch_separate_string: a leading "^^<c>" makes <c> the delimiter.
		{"alternative delimiter", "^^:{a=b c}null/1:&park", []string{"{a=b c}null/1", "&park"}},
		{"too short for an alternative delimiter", "^^:", []string{"^^:"}},
		{"NUL ends the string", "a b\x00c d", []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

type testLeg struct {
	vars   map[string]string
	target string
}

func varMap(v vars) map[string]string {
	m := map[string]string{}
	for _, h := range v {
		m[h.Name] = h.Value
	}
	return m
}

func dialGroups(d dialString) [][]testLeg {
	var groups [][]testLeg
	for _, g := range d.groups {
		var legs []testLeg
		for _, l := range g {
			legs = append(legs, testLeg{varMap(l.vars), l.target})
		}
		groups = append(groups, legs)
	}
	return groups
}

func leg(target string, kv ...string) testLeg {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return testLeg{m, target}
}

func kvs(kv ...string) map[string]string { return leg("", kv...).vars }

// TestParseDialString parses dial strings as switch_ivr_originate receives
// them: bridge's argument, or the originate API's first argument after
// splitArgs (see TestOriginateArgs for the two together).
func TestParseDialString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		ok       bool
		global   map[string]string
		groups   [][]testLeg
		badGroup bool
	}{
		{"plain", "sofia/gateway/carrier/1", true, kvs(), [][]testLeg{{leg("sofia/gateway/carrier/1")}}, false},
		// Quotes that reach the {} split protect a comma there (as from
		// bridge; through the originate API they are gone by then, see
		// TestOriginateArgs), and cleanup removes them.
		{"quoted comma and space", "{a=1,b='x,y',c='sp ace'}user/1000", true,
			kvs("a", "1", "b", "x,y", "c", "sp ace"), [][]testLeg{{leg("user/1000")}}, false},
		{"escaped comma and quote", `{a=x\,y,b=it\'s}null/1`, true,
			kvs("a", "x,y", "b", "it's"), [][]testLeg{{leg("null/1")}}, false},
		// Every token is trimmed, on both sides of the '='.
		{"spaces around names and values", "{ a = 1 , b=2 }null/1", true,
			kvs("a", "1", "b", "2"), [][]testLeg{{leg("null/1")}}, false},
		// Items are split on '=' into 2 tokens: the rest of the value may
		// hold '='; an item without '=' (or "a=", which gives one token)
		// is ignored, and an empty name never reaches a channel.
		{"items without two parts", "{a=b=c,noequals,d=,=x}null/1", true,
			kvs("a", "b=c"), [][]testLeg{{leg("null/1")}}, false},
		// switch_event_add_header_string on an EF_UNIQ_HEADERS event: the
		// last value wins, and an empty one deletes the variable. ('' would
		// be removed by the ',' split's cleanup, leaving "a=", which is
		// ignored; '' reaches the '=' split as ''.)
		{"last value wins", "{a=1,a=2}null/1", true, kvs("a", "2"), [][]testLeg{{leg("null/1")}}, false},
		{"quoted empty value is ignored", "{a=1,a=''}null/1", true, kvs("a", "1"), [][]testLeg{{leg("null/1")}}, false},
		{"empty value deletes", `{a=1,a=\'\'}null/1`, true, kvs(), [][]testLeg{{leg("null/1")}}, false},
		// switch_find_end_paren does not know quotes: the block ends at
		// the first balancing '}', and the lone quote left is kept.
		{"brace in quotes ends the block", "{a='x}y'}null/1", true,
			kvs("a", "'x"), [][]testLeg{{leg("y'}null/1")}}, false},
		{"nested braces", "{a={b}}null/1", true, kvs("a", "{b}"), [][]testLeg{{leg("null/1")}}, false},
		{"two blocks", "{a=1}{b=2}null/1", true, kvs("a", "1", "b", "2"), [][]testLeg{{leg("null/1")}}, false},
		// Only blocks that follow each other directly are parsed; a space
		// leaves the second one in the dial string.
		{"space between blocks", "{a=1} {b=2}null/1", true, kvs("a", "1"), [][]testLeg{{leg("{b=2}null/1")}}, false},
		{"ultra-global block", "<u=1>{a=2}null/1", true, kvs("u", "1", "a", "2"), [][]testLeg{{leg("null/1")}}, false},
		// switch_event_create_brackets: "^^<c>" at the start of a block
		// makes <c> its separator.
		{"alternative separator", "{^^:a=x,y:b=2}null/1", true,
			kvs("a", "x,y", "b", "2"), [][]testLeg{{leg("null/1")}}, false},
		// A backslash at the end of a block makes the next scan skip the
		// NUL that replaced the '}' and run on into the dial string: the
		// ',' there becomes the end of the value's token, so the string
		// is cut and the second leg is lost.
		{"backslash before the closing brace", `{a=x\}null/1,null/2`, true,
			kvs("a", `x\`), [][]testLeg{{leg("null/1")}}, false},
		// Capture 25.
		{"simultaneous with per-leg vars",
			"{ignore_early_media=true}[origination_uuid=25000000-0000-4000-8000-00000000001a]sofia/internal/2501@127.0.0.1:5093,[origination_uuid=25000000-0000-4000-8000-00000000001b]sofia/internal/2502@127.0.0.1:5090", true,
			kvs("ignore_early_media", "true"), [][]testLeg{{
				leg("sofia/internal/2501@127.0.0.1:5093", "origination_uuid", "25000000-0000-4000-8000-00000000001a"),
				leg("sofia/internal/2502@127.0.0.1:5090", "origination_uuid", "25000000-0000-4000-8000-00000000001b"),
			}}, false},
		{"failover",
			"[origination_uuid=25000000-0000-4000-8000-00000000002a]sofia/internal/2503@127.0.0.1:5092|[origination_uuid=25000000-0000-4000-8000-00000000002b]sofia/internal/2504@127.0.0.1:5090", true,
			kvs(), [][]testLeg{
				{leg("sofia/internal/2503@127.0.0.1:5092", "origination_uuid", "25000000-0000-4000-8000-00000000002a")},
				{leg("sofia/internal/2504@127.0.0.1:5090", "origination_uuid", "25000000-0000-4000-8000-00000000002b")},
			}, false},
		{"commas inside a leg block", "[a=1,b=2]null/1", true, kvs(), [][]testLeg{{leg("null/1", "a", "1", "b", "2")}}, false},
		{"two leg blocks", "[a=1][b=2]null/1", true, kvs(), [][]testLeg{{leg("null/1", "a", "1", "b", "2")}}, false},
		{"leg vars override nothing global", "{a=1}[a=2]null/1,null/2", true,
			kvs("a", "1"), [][]testLeg{{leg("null/1", "a", "2"), leg("null/2")}}, false},
		// The '|' split's cleanup removes the quotes before the [] comma
		// scan looks for them, so they do not protect the comma.
		{"quoted comma in a leg block", "[a='x,y']null/1", true, kvs(), [][]testLeg{{leg("null/1", "a", "x")}}, false},
		// A backslash does: the scan leaves "\," alone, and the ',' split
		// (which does not split there) unescapes it.
		{"escaped comma in a leg block", `[a=x\,y]null/1`, true, kvs(), [][]testLeg{{leg("null/1", "a", "x,y")}}, false},
		// "[^^": every comma of the block is QUOTED_ESC_COMMA, a comma
		// again for switch_event_create_brackets.
		{"alternative separator in a leg block", "[^^:a=x,y:b=2]null/1,null/2", true,
			kvs(), [][]testLeg{{leg("null/1", "a", "x,y", "b", "2"), leg("null/2")}}, false},
		{"spaces around legs", " null/1 , null/2 ", true, kvs(), [][]testLeg{{leg("null/1"), leg("null/2")}}, false},
		// An empty leg is kept (it fails CHAN_NOT_IMPLEMENTED); a trailing
		// ',' or '|' starts no token.
		{"empty leg", ",null/1,", true, kvs(), [][]testLeg{{leg(""), leg("null/1")}}, false},
		{"trailing pipe", "null/1|", true, kvs(), [][]testLeg{{leg("null/1")}}, false},
		// switch_separate_string's "^^<c>" applies to the '|' split too.
		{"alternative failover separator", "^^;null/1;null/2", true, kvs(), [][]testLeg{{leg("null/1")}, {leg("null/2")}}, false},
		// Groups are parsed when dialled: a bad one after a good one.
		{"bad later group", "null/1|[a=1null/2", true, kvs(), [][]testLeg{{leg("null/1")}}, true},
		{"bad first group", "[a=1null/1|null/2", false, nil, nil, true},
		{"unterminated global vars", "{a=1", false, nil, nil, false},
		{"unterminated leg vars", "[a=1null/1", false, nil, nil, true},
		{"no URL after vars", "{a=1}", false, nil, nil, false},
		{"only a pipe", "|", false, nil, nil, false},
		{"empty", "", false, nil, nil, false},
		{"spaces", "   ", false, nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := parseDialString(tt.in)
			if ok != tt.ok || d.badGroup != tt.badGroup {
				t.Fatalf("parseDialString(%q): ok = %v, badGroup = %v; want %v, %v", tt.in, ok, d.badGroup, tt.ok, tt.badGroup)
			}
			if !ok {
				return
			}
			if got := varMap(d.global); !reflect.DeepEqual(got, tt.global) {
				t.Errorf("global = %q, want %q", got, tt.global)
			}
			if got := dialGroups(d); !reflect.DeepEqual(got, tt.groups) {
				t.Errorf("groups = %q, want %q", got, tt.groups)
			}
		})
	}
}

// TestOriginateArgs runs whole originate API arguments through both
// layers: splitArgs (mod_commands.c:originate_function) and then
// parseDialString on the first argument (switch_ivr_originate).
func TestOriginateArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		global map[string]string
		groups [][]testLeg
	}{
		{"capture 14",
			"{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_number=1000,origination_caller_id_name='Plain Tester'}sofia/internal/15551234567@127.0.0.1:5090 &park",
			kvs("origination_uuid", "d4d4d4d4-0000-4000-8000-0000000000e1", "origination_caller_id_number", "1000", "origination_caller_id_name", "Plain Tester"),
			[][]testLeg{{leg("sofia/internal/15551234567@127.0.0.1:5090")}}},
		// The space split removes the quotes, so the {} split then cuts
		// at the comma, and "y" (no '=') is ignored.
		{"quoted comma", "{b='x,y',c=1}null/1 &park", kvs("b", "x", "c", "1"), [][]testLeg{{leg("null/1")}}},
		// "\," survives the space split (delim 0 cannot be escaped) and
		// protects the comma in the {} split, which unescapes it.
		{"backslash comma", `{b=x\,y}null/1 &park`, kvs("b", "x,y"), [][]testLeg{{leg("null/1")}}},
		{"double backslash comma", `{b=x\\,y}null/1 &park`, kvs("b", "x,y"), [][]testLeg{{leg("null/1")}}},
		// Matched quotes vanish at every layer; an escaped one stays (an
		// unescaped lone one would swallow the rest of the command, see
		// TestSplitArgs).
		{"escaped quote", `{b=O\'Brien}null/1 &park`, kvs("b", "O'Brien"), [][]testLeg{{leg("null/1")}}},
		{"escaped quote in quotes", `{b='O\'Brien x'}null/1 &park`, kvs("b", "O'Brien x"), [][]testLeg{{leg("null/1")}}},
		{"matched quotes", `{b=it''s}null/1 &park`, kvs("b", "its"), [][]testLeg{{leg("null/1")}}},
		// Quoting keeps the spaces through the space split, but the {} and
		// '=' splits trim every token; only \s escaped for the last layer
		// (\\\\s here: each layer turns \\ into \) keeps outer spaces.
		{"quoted outer spaces are trimmed", "{a='  padded  '}null/1 &park", kvs("a", "padded"), [][]testLeg{{leg("null/1")}}},
		{"escaped outer spaces", `{a=\\\\spadded\\\\s}null/1 &park`, kvs("a", " padded "), [][]testLeg{{leg("null/1")}}},
		{"backslash", `{a=C:\\\\dir}null/1 &park`, kvs("a", `C:\dir`), [][]testLeg{{leg("null/1")}}},
		{"alternative separator", "{^^:a=x,y:b=2}null/1 &park", kvs("a", "x,y", "b", "2"), [][]testLeg{{leg("null/1")}}},
		{"quoted space in a leg block", "{a=1}[c='x y']null/1 &park", kvs("a", "1"), [][]testLeg{{leg("null/1", "c", "x y")}}},
		// Capture 25, second call.
		{"failover",
			"[origination_uuid=25000000-0000-4000-8000-00000000002a]sofia/internal/2503@127.0.0.1:5092|[origination_uuid=25000000-0000-4000-8000-00000000002b]sofia/internal/2504@127.0.0.1:5090 &park",
			kvs(), [][]testLeg{
				{leg("sofia/internal/2503@127.0.0.1:5092", "origination_uuid", "25000000-0000-4000-8000-00000000002a")},
				{leg("sofia/internal/2504@127.0.0.1:5090", "origination_uuid", "25000000-0000-4000-8000-00000000002b")},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := splitArgs(tt.in)
			if len(argv) != 2 || argv[1] != "&park" {
				t.Fatalf("splitArgs(%q) = %q, want the dial string and &park", tt.in, argv)
			}
			d, ok := parseDialString(argv[0])
			if !ok {
				t.Fatalf("parseDialString(%q) failed", argv[0])
			}
			if got := varMap(d.global); !reflect.DeepEqual(got, tt.global) {
				t.Errorf("global = %q, want %q", got, tt.global)
			}
			if got := dialGroups(d); !reflect.DeepEqual(got, tt.groups) {
				t.Errorf("groups = %q, want %q", got, tt.groups)
			}
		})
	}

	// Capture 16: the unquoted space leaves "{...=Plain" as the dial
	// string, an unterminated block ("Parse Error!"), which the originate
	// reports as DESTINATION_OUT_OF_ORDER.
	argv := splitArgs("{origination_uuid=d4d4d4d4-0000-4000-8000-0000000000e1,origination_caller_id_name=Plain Tester}sofia/internal/15551234567@127.0.0.1:5090 &park")
	if len(argv) != 3 {
		t.Fatalf("capture 16: %d arguments %q, want 3", len(argv), argv)
	}
	if _, ok := parseDialString(argv[0]); ok {
		t.Errorf("capture 16: parseDialString(%q) succeeded", argv[0])
	}
	if got := parseFailCause(originateOpts{}); got != "DESTINATION_OUT_OF_ORDER" {
		t.Errorf("capture 16: parse failure cause %s", got)
	}
}

func TestParseAppString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		name     string
		arg      string
		isInline bool
	}{
		{"&park", "park", "", true},
		{"&park()", "park", "", true},
		{"&bridge({x=1}sofia/gateway/carrier/1)", "bridge", "{x=1}sofia/gateway/carrier/1", true},
		{"&playback(/tmp/a b.wav)", "playback", "/tmp/a b.wav", true},
		{"9664", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, ok := parseAppString(tt.in)
			if ok != tt.isInline || a.name != tt.name || a.arg != tt.arg {
				t.Errorf("parseAppString(%q) = %+v, %v; want %q %q %v", tt.in, a, ok, tt.name, tt.arg, tt.isInline)
			}
		})
	}
}

func TestCauseQ850(t *testing.T) {
	t.Parallel()
	// Values from the captures: FreeSWITCH-only causes report 16.
	for cause, want := range map[string]int{
		"NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_ANSWER": 19, "CALL_REJECTED": 21,
		"DESTINATION_OUT_OF_ORDER": 27, "NORMAL_TEMPORARY_FAILURE": 41, "NO_ROUTE_DESTINATION": 3,
		"LOSE_RACE": 16, "ALLOTTED_TIMEOUT": 16,
	} {
		if got := q850(cause); got != want {
			t.Errorf("q850(%s) = %d, want %d", cause, got, want)
		}
	}
	if causeOrDefault("bogus") != "NORMAL_CLEARING" {
		t.Error("unknown causes must fall back to NORMAL_CLEARING (capture 18: error/bogus_cause)")
	}
}
