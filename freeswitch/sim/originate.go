package sim

import (
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// errRestarted is the cause of an originate cut short by a simulated
// restart; such an originate reports nothing (no reply, no BACKGROUND_JOB).
const errRestarted = "\x00restarted"

const originateUsage = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"

// FreeSWITCH's own parsing of originate arguments and dial strings,
// transcribed from signalwire/freeswitch v1.10.12 (the functions involved
// are unchanged on master cc93a683).
//
// The originate API's argument goes through three layers, each a
// switch_separate_string whose tokens then pass through
// cleanup_separated_string (matched single quotes removed, backslash
// escapes processed, outer spaces trimmed):
//
//  1. mod_commands.c:originate_function splits it on ' ' (at most 10
//     tokens): quotes protect spaces, then vanish (capture 14), and an
//     unquoted space splits even inside {} (capture 16).
//  2. switch_ivr_originate.c:switch_ivr_originate parses the leading <...>
//     and {...} blocks with switch_event.c:switch_event_create_brackets,
//     which splits the block on ',' (a quote left over from layer 1
//     protects commas; a backslash protects anything) ...
//  3. ... and each item on '=' into two tokens.
//
// The rest of the dial string is split on '|' (failover groups), each group
// on ',' (simultaneous legs), and each leg's [...] blocks go through
// switch_event_create_brackets too. Every layer undoes one level of quoting
// and escaping, so through the originate API {b='x,y'} gives b=x: layer 1
// has removed the quotes before layer 2 looks for commas.
//
// The C code works in place on one buffer, writing NULs at delimiters, and
// its scans skip the byte after a backslash without checking for the NUL:
// a token ending in a backslash makes the next scan run on into what
// follows it in the buffer (and write NULs there). To reproduce that, the
// Go below works the same way on a cbuf, with indices for pointers.

const (
	// mod_commands.c:originate_function: char *argv[10].
	maxOriginateArgs = 10
	// switch_ivr_originate.c: #define MAX_PEERS 128 sizes pipe_names and
	// peer_names.
	maxPeers = 128
	// switch_event.c:switch_event_create_brackets: char *var_array[1024].
	maxBracketVars = 1024
	// switch_ivr_originate.c: QUOTED_ESC_COMMA and UNQUOTED_ESC_COMMA, the
	// bytes a [per-leg] block's commas are turned into while the group is
	// split into legs.
	quotedEscComma   = 1
	unquotedEscComma = 2
	// switch_utils.c: #define ESCAPE_META '\\'.
	escapeMeta = '\\'
)

// cbuf is a C string buffer: the bytes, then NULs. Reads past its end (C
// reads up to two bytes past a string's NUL in the cases noted above, which
// for the last string of a buffer is past the allocation) give NUL.
type cbuf []byte

// newCBuf is strdup(s): s up to its first NUL, as C sees it.
func newCBuf(s string) cbuf {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	b := make(cbuf, len(s)+1)
	copy(b, s)
	return b
}

// at is *(b+i).
func (b cbuf) at(i int) byte {
	if i >= 0 && i < len(b) {
		return b[i]
	}
	return 0
}

// str is the C string at i.
func (b cbuf) str(i int) string {
	j := i
	for b.at(j) != 0 {
		j++
	}
	if i >= j {
		return ""
	}
	return string(b[i:j])
}

// strchr is strchr(b+i, c) for c != 0: an index or -1.
func (b cbuf) strchr(i int, c byte) int {
	for ; b.at(i) != 0; i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// skipSpaces is the "while (*p == ' ') p++" found all over the C.
func (b cbuf) skipSpaces(i int) int {
	for b.at(i) == ' ' {
		i++
	}
	return i
}

// unescapeChar is switch_utils.c:unescape_char: \n \r \t \s stand for
// linefeed, carriage return, tab and space; any other byte is itself.
func unescapeChar(c byte) byte {
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

// cleanupSeparatedString is switch_utils.c:cleanup_separated_string, run in
// place on every token switch_separate_string returns; it returns where
// the cleaned token starts. Leading spaces are skipped; a backslash escapes
// ', ", the delimiter (not the blank one: delim is 0 then) and itself, and
// \n \r \t \s are unescaped; any other backslash is kept as it is. A single
// quote with another one after it (anywhere later in the token, escaped or
// not) opens or closes a quoted run and is dropped; one with none after it
// is kept. Spaces after the last byte kept outside quotes are trimmed.
func cleanupSeparatedString(b cbuf, str int, delim byte) int {
	ptr := str
	for b.at(ptr) == ' ' { // skip initial whitespace
		ptr++
	}
	start, dest, end := ptr, ptr, -1 // end: C's char *end = NULL
	inside := false
	for ; b.at(ptr) != 0; ptr++ {
		esc := false
		if b[ptr] == escapeMeta {
			next := b.at(ptr + 1)
			e, ok := next, true
			switch {
			case next == '\'' || next == '"' || (delim != 0 && next == delim) || next == escapeMeta:
			case unescapeChar(next) != next:
				e = unescapeChar(next)
			default:
				ok = false
			}
			if ok {
				ptr++
				b[dest] = e
				dest++
				end = dest
				esc = true
			}
		}
		if !esc {
			ch := b[ptr]
			if ch == '\'' && (inside || b.strchr(ptr+1, '\'') >= 0) {
				if inside = !inside; inside {
					end = dest
				}
			} else {
				b[dest] = ch
				dest++
				if ch != ' ' || inside {
					end = dest
				}
			}
		}
	}
	if end >= 0 {
		b[end] = 0
	}
	return start
}

// separateString is switch_utils.c:switch_separate_string(b+buf, delim,
// array, max): at most max tokens (the last one takes the rest), as
// indices into b. A leading "^^<c>" followed by at least one more byte
// makes <c> the delimiter instead.
func separateString(b cbuf, buf int, delim byte, max int) []int {
	if b.at(buf) == '^' && b.at(buf+1) == '^' {
		if p := buf + 2; b.at(p) != 0 && b.at(p+1) != 0 {
			delim, buf = b[p], p+1
		}
	}
	if delim == ' ' {
		return separateStringBlankDelim(b, buf, max)
	}
	return separateStringCharDelim(b, buf, delim, max)
}

// separateStringCharDelim is switch_utils.c:separate_string_char_delim. A
// backslash makes the scan skip the next byte (even a NUL); a single quote
// with another one after it toggles quoting, and a delimiter inside quotes
// does not split. Empty tokens are kept, but a trailing delimiter does not
// start one.
func separateStringCharDelim(b cbuf, buf int, delim byte, max int) []int {
	const (
		start = iota
		findDelim
	)
	var array []int
	state, ptr, inside := start, buf, false
	for b.at(ptr) != 0 && len(array) < max {
		switch state {
		case start:
			array = append(array, ptr)
			state = findDelim
		case findDelim:
			switch {
			case b[ptr] == escapeMeta:
				ptr++ // escaped characters are copied verbatim
			case b[ptr] == '\'' && (inside || b.strchr(ptr+1, '\'') >= 0):
				inside = !inside
			case b[ptr] == delim && !inside:
				b[ptr] = 0
				state = start
			}
			ptr++
		}
	}
	for i := range array {
		array[i] = cleanupSeparatedString(b, array[i], delim)
	}
	return array
}

// separateStringBlankDelim is switch_utils.c:separate_string_blank_delim:
// runs of spaces separate tokens, and leading or trailing ones make none.
// A backslash makes the scan skip the next byte; every single quote
// toggles quoting, matched or not (unlike the other delimiters), and
// spaces inside quotes do not split.
func separateStringBlankDelim(b cbuf, buf int, max int) []int {
	const (
		start = iota
		skipInitialSpace
		findDelim
		skipEndingSpace
	)
	var array []int
	state, ptr, inside := start, buf, false
	for b.at(ptr) != 0 && len(array) < max {
		switch state {
		case start:
			array = append(array, ptr)
			state = skipInitialSpace
		case skipInitialSpace:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = findDelim
			}
		case findDelim:
			switch {
			case b[ptr] == escapeMeta:
				ptr++
			case b[ptr] == '\'':
				inside = !inside
			case b[ptr] == ' ' && !inside:
				b[ptr] = 0
				state = skipEndingSpace
			}
			ptr++
		case skipEndingSpace:
			if b[ptr] == ' ' {
				ptr++
			} else {
				state = start
			}
		}
	}
	for i := range array {
		array[i] = cleanupSeparatedString(b, array[i], 0)
	}
	return array
}

// findEndParen is switch_utils.c:switch_find_end_paren: after leading
// spaces, s must start with open; the index of the close balancing it, or
// -1. Quotes and backslashes are not looked at.
func findEndParen(b cbuf, s int, open, close byte) int {
	s = b.skipSpaces(s)
	if b.at(s) != open {
		return -1
	}
	depth := 1
	for e := s + 1; b.at(e) != 0; e++ {
		if b[e] == open && open != close {
			depth++
		} else if b[e] == close {
			if depth--; depth == 0 {
				return e
			}
		}
	}
	return -1
}

// strchrStrict is switch_utils.h:switch_strchr_strict(b+in, find, allowed):
// the index of the first find if only bytes of allowed come before it; the
// index of the NUL if all of the string is allowed bytes; -1 (NULL)
// otherwise, or for an empty string.
func strchrStrict(b cbuf, in int, find byte, allowed string) int {
	p := in
	if b.at(p) == 0 {
		return -1
	}
	for ; b.at(p) != 0; p++ {
		if b[p] == find {
			break
		}
		if strings.IndexByte(allowed, b[p]) < 0 {
			return -1
		}
	}
	return p
}

// createBrackets is switch_event.c:switch_event_create_brackets(b+data, a,
// bc, c, &v, &new_data, SWITCH_FALSE), called only with b[data] == a: the
// block from a to the bc balancing it is split on c ("^^<x>" at its start
// makes <x> the separator), each item on '=' into exactly two tokens
// (other items are ignored), and each pair added to v. It returns
// new_data, where what follows the block starts, or false if the block
// does not end.
func createBrackets(b cbuf, data int, a, bc, c byte, v *vars) (int, bool) {
	vdata := data
	end := findEndParen(b, vdata, a, bc)
	// C now runs a check_a/check_b loop meant to take in further blocks. It
	// starts at the closing bc itself, which switch_strchr_strict(check_a,
	// a, " ") refuses at once (bc is neither a nor a space), so it never
	// changes end.
	if end < 0 {
		return 0, false
	}
	next := end
	vdata++
	b[end] = 0
	end++
	vnext := -1
	for {
		if next >= 0 {
			b[next] = 0
			next++
			// A further block right after this one (spaces between) is
			// looked for, but past its opening bracket, so that only
			// "}{{...}" finds one: vnext is then that block's closing
			// bracket, and the items parsed from there run to the end of
			// the buffer. "{a=1}{b=2}" is left to the caller's loop.
			if pnext := strchrStrict(b, next, a, " "); pnext >= 0 {
				next = pnext + 1
			}
			vnext = findEndParen(b, next, a, bc)
			next = -1
		}
		if b.at(vdata) == '^' && b.at(vdata+1) == '^' {
			vdata += 2
			c = b.at(vdata) // "{^^}": c is the NUL and the items come from what follows the block
			vdata++
		}
		for _, item := range separateString(b, vdata, c, maxBracketVars) {
			kv := separateString(b, item, '=', 2)
			if len(kv) != 2 {
				continue
			}
			// switch_event_add_header_string on the event (created with
			// EF_UNIQ_HEADERS, as SWITCH_EVENT_CHANNEL_DATA events are):
			// a new value replaces the old one, an empty one deletes it;
			// vars.set does both. A variable with an empty name never
			// reaches a channel (switch_channel_set_variable_var_check
			// ignores it), so it is not kept.
			if name := b.str(kv[0]); name != "" {
				v.set(name, b.str(kv[1]))
			}
		}
		if vnext < 0 {
			break
		}
		vdata, vnext = vnext, -1
	}
	return end, true
}

// splitArgs splits the originate API's argument as
// mod_commands.c:originate_function does: switch_separate_string(mycmd, ' ',
// argv, 10). Quotes protect spaces and are removed, backslash escapes are
// processed (\\ \' \" \n \r \t \s; "\," stays "\," for the next layer),
// and an unquoted space splits even inside {} (capture 16).
func splitArgs(s string) []string {
	b := newCBuf(s)
	var out []string
	for _, i := range separateString(b, 0, ' ', maxOriginateArgs) {
		out = append(out, b.str(i))
	}
	return out
}

// dialLeg is one endpoint of a dial string with its [per-leg] variables.
type dialLeg struct {
	vars   vars
	target string
}

// dialString is a parsed originate dial string: <ultra-global> and {global}
// variables, then failover groups (|) of simultaneous legs (,).
type dialString struct {
	global vars
	groups [][]dialLeg
	// badGroup: the group after the last of groups has a [per-leg] block
	// that does not parse. switch_ivr_originate parses each group only
	// when it comes to dial it, so the originate fails there, once every
	// earlier group has failed.
	badGroup bool
}

// parseDialString parses a dial string as switch_ivr_originate.c:
// switch_ivr_originate does; false if it fails before dialling anything
// ("Parse Error!", "No origination URL specified!"). The string comes from
// the originate API (its first argument, after splitArgs) or from bridge.
//
// Not simulated: a dial string containing ":_:" goes to
// switch_ivr_enterprise_originate instead; here it is parsed like any
// other.
func parseDialString(s string) (dialString, bool) {
	var d dialString
	odata := newCBuf(s) // odata = strdup(bridgeto)
	data := odata.skipSpaces(0)
	// <ultra-global> blocks, then {global} blocks, as many as follow each
	// other; both go into the same variable event.
	for odata.at(data) == '<' {
		parsed, ok := createBrackets(odata, data, '<', '>', ',', &d.global)
		if !ok {
			return d, false
		}
		data = parsed
	}
	for odata.at(data) == '{' {
		parsed, ok := createBrackets(odata, data, '{', '}', ',', &d.global)
		if !ok {
			return d, false
		}
		data = parsed
	}
	data = odata.skipSpaces(data)
	if odata.at(data) == 0 {
		return d, false
	}
	loopData := newCBuf(odata.str(data)) // loop_data = strdup(data)
	for _, pipe := range separateString(loopData, 0, '|', maxPeers) {
		legs, ok := parseDialGroup(loopData, pipe)
		if !ok {
			d.badGroup = true
			break
		}
		// A group with no legs (nothing between two '|') dials nothing.
		if len(legs) > 0 {
			d.groups = append(d.groups, legs)
		}
	}
	return d, len(d.groups) > 0
}

// parseDialGroup parses the failover group at b[pipe] (a token of the '|'
// split) into its simultaneous legs, as the body of switch_ivr_originate's
// "for (r = 0; r < or_argc ...)" loop does; false on a [...] block that
// does not end ("Parse Error!").
func parseDialGroup(b cbuf, pipe int) ([]dialLeg, bool) {
	// Commas inside a [...] block must not split the group: each one not
	// preceded by a backslash becomes QUOTED_ESC_COMMA if a single quote
	// since the '[' left quoting on or the block starts "[^^" (its own
	// separator), else UNQUOTED_ESC_COMMA. The '|' split's cleanup has
	// already removed matched quotes, so in practice only "[^^<x>...]"
	// keeps commas inside values.
	end, alt, q := -1, false, false
	for p := pipe; b.at(p) != 0; p++ {
		if end < 0 && b[p] == '[' {
			end = findEndParen(b, p, '[', ']')
			alt = b.at(p+1) == '^' && b.at(p+2) == '^'
			q = false
		}
		if b[p] == '\'' {
			q = !q
		}
		if end >= 0 && p < end && b[p] == ',' && b.at(p-1) != '\\' {
			if q || alt {
				b[p] = quotedEscComma
			} else {
				b[p] = unquotedEscComma
			}
		}
		if p == end {
			end = -1
		}
	}
	var legs []dialLeg
	for _, chanType := range separateString(b, pipe, ',', maxPeers) {
		var leg dialLeg
		chanType = b.skipSpaces(chanType)
		for b.at(chanType) == '[' {
			// The quoted commas become commas again; the unquoted ones
			// separate the block's items.
			bend := findEndParen(b, chanType, '[', ']')
			for p := chanType + 1; p < bend && b.at(p) != 0; p++ {
				if b[p] == quotedEscComma {
					b[p] = ','
				}
			}
			parsed, ok := createBrackets(b, chanType, '[', ']', unquotedEscComma, &leg.vars)
			if !ok || parsed == chanType {
				return nil, false
			}
			chanType = parsed
		}
		// An empty leg (",," or a leading ',') is kept: FreeSWITCH asks
		// for an endpoint named "" and gets CHAN_NOT_IMPLEMENTED.
		leg.target = b.str(b.skipSpaces(chanType))
		legs = append(legs, leg)
	}
	return legs, true
}

// parseFailCause is the cause of an originate whose dial string fails to
// parse: switch_ivr_originate's "done:" path finds no peer channel and no
// failed leg's reason, so it takes the caller's hangup cause (none while
// the caller is up, which becomes ORIGINATOR_CANCEL) or, with no caller,
// DESTINATION_OUT_OF_ORDER (capture 16).
func parseFailCause(o originateOpts) string {
	if o.caller != nil {
		return "ORIGINATOR_CANCEL"
	}
	return "DESTINATION_OUT_OF_ORDER"
}

// legOutcome is how a leg ended its part in an originate.
type legOutcome struct {
	c        *Channel
	answered bool
	cause    string
}

// originateOpts carries what the originate's caller adds.
type originateOpts struct {
	caller  *Channel // the A-leg when bridging
	timeout time.Duration
	cidName string
	cidNum  string
}

// originate dials a dial string and returns the answered leg, or the cause
// the whole attempt failed with. It blocks until one leg answers, every leg
// failed, or the originate timeout passes.
func (s *Sim) originate(dial string, o originateOpts) (*Channel, string) {
	s.counts.originates.Add(1)
	ds, ok := parseDialString(dial)
	if !ok {
		return nil, parseFailCause(o)
	}
	timeout := 60 * time.Second
	if v, ok := ds.global.get("originate_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	} else if v, ok := ds.global.get("call_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	} else if o.timeout > 0 {
		timeout = o.timeout
	}
	deadline := time.NewTimer(s.clock.Real(timeout))
	defer deadline.Stop()
	var callerGone <-chan struct{}
	if o.caller != nil {
		callerGone = o.caller.hungup
	}
	lastCause := "NO_ANSWER"
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	for _, group := range ds.groups {
		results := make(chan legOutcome, len(group)*2)
		s.mu.Lock()
		if s.epoch != epoch {
			// The switch "restarted" under this originate: like a process
			// that died, it goes no further.
			s.mu.Unlock()
			return nil, errRestarted
		}
		var legs []*Channel
		for _, leg := range group {
			c, cause := s.createLeg(ds.global, leg, o, results)
			if c == nil {
				lastCause = cause
				continue
			}
			legs = append(legs, c)
		}
		s.mu.Unlock()
		pending := len(legs)
		for pending > 0 {
			select {
			case r := <-results:
				if r.answered {
					s.mu.Lock()
					for _, c := range legs {
						c.waiter = nil
						if c != r.c && c.ready() {
							c.hangup("LOSE_RACE")
						}
					}
					ready := r.c.ready()
					s.mu.Unlock()
					if ready {
						return r.c, ""
					}
					pending--
					lastCause = "NORMAL_CLEARING"
					continue
				}
				pending--
				lastCause = r.cause
			case <-deadline.C:
				s.mu.Lock()
				for _, c := range legs {
					c.waiter = nil
					c.hangup("NO_ANSWER")
				}
				s.mu.Unlock()
				return nil, "NO_ANSWER"
			case <-callerGone:
				s.mu.Lock()
				for _, c := range legs {
					c.waiter = nil
					c.hangup("ORIGINATOR_CANCEL")
				}
				s.mu.Unlock()
				return nil, "ORIGINATOR_CANCEL"
			}
		}
	}
	if ds.badGroup {
		// Every group before it failed; the next one does not parse.
		return nil, parseFailCause(o)
	}
	return nil, lastCause
}

// createLeg creates one outgoing channel and scripts its far end. It
// returns a nil channel and a cause for failures FreeSWITCH reports before
// a channel exists. Callers hold s.mu.
func (s *Sim) createLeg(global vars, leg dialLeg, o originateOpts, results chan legOutcome) (*Channel, string) {
	lv := make(vars, 0, len(global)+len(leg.vars))
	lv = append(lv, global...)
	for _, kv := range leg.vars {
		lv.set(kv.Name, kv.Value)
	}
	target := leg.target
	endpoint, rest, _ := strings.Cut(target, "/")
	var (
		name, number, profileName, gateway, destURL, user string
		loopContext, calleeNumber                         string
		outcome                                           scenario.Outcome
		picker                                            = s.picker.Load()
	)
	switch endpoint {
	case "error":
		return nil, causeOrDefault(rest)
	case "sofia":
		prof, r, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, "INVALID_PROFILE"
		}
		if prof == "gateway" {
			gw, num, _ := strings.Cut(r, "/")
			if gw != "carrier" || num == "" {
				return nil, "INVALID_GATEWAY"
			}
			gateway, number, profileName = gw, num, "external"
			name = "sofia/external/" + num
			destURL = "sip:" + num + "@127.0.0.1:5090"
		} else {
			if prof != "internal" && prof != "external" {
				return nil, "INVALID_PROFILE"
			}
			profileName = prof
			number, _, _ = strings.Cut(r, "@")
			name = "sofia/" + prof + "/" + r
			destURL = "sip:" + r
			if !strings.Contains(r, "@") {
				return nil, "INVALID_URL"
			}
		}
		outcome = picker.Pick(number)
	case "user":
		ext, _, _ := strings.Cut(rest, "@")
		known, registered, out := picker.User(ext)
		if !known {
			return nil, "SUBSCRIBER_ABSENT"
		}
		if !registered {
			return nil, "USER_NOT_REGISTERED"
		}
		user, number, profileName, outcome = ext, ext, "internal", out
		name = "sofia/internal/" + ext + "@127.0.0.1:5070"
		destURL = "sip:" + ext + "@127.0.0.1:5070"
		if picker.Scenario().Users.BusyWhenInCall && s.userCalls[ext] > 0 {
			outcome = scenario.Outcome{Kind: scenario.Busy, RingFor: 50 * time.Millisecond, SIPStatus: 486, Cause: "USER_BUSY"}
		}
	case "loopback":
		// loopback/<exten>[/<context>[/<dialplan>]]: mod_loopback's
		// channel_outgoing_channel. The far end is not scripted: the B-leg
		// runs <exten> in <context> (default "default") and its fate is
		// the A-leg's (see newLoopbackB and routeLoopbackB).
		ext, ctx, _ := strings.Cut(rest, "/")
		ctx, _, _ = strings.Cut(ctx, "/")
		if ctx == "" {
			ctx = "default"
		}
		number, loopContext = ext, ctx
		// switch_ivr_originate gives the leg callee_id_number =
		// switch_sanitize_number(<data>): what follows the last '/', so
		// loopback/6002/fsref has Caller-Callee-ID-Number fsref (capture 07)
		// and loopback/6002 has 6002 (capture 06).
		calleeNumber = sanitizeNumber(rest)
		name = "loopback/" + ext + "-a"
	case "null":
		number = rest
		name = "null/" + rest
		outcome = scenario.Outcome{Kind: scenario.Answer}
	default:
		return nil, "CHAN_NOT_IMPLEMENTED"
	}
	uuid, _ := lv.get("origination_uuid")
	if uuid != "" && s.channel(uuid) != nil {
		return nil, "DESTINATION_OUT_OF_ORDER"
	}
	// Both halves of a loopback/ channel are sessions: the B-leg counts
	// against max_sessions and sps like any other.
	sessions := 1
	if endpoint == "loopback" {
		sessions = 2
	}
	if !s.takeSessions(sessions) {
		return nil, "DESTINATION_OUT_OF_ORDER"
	}
	if uuid == "" {
		uuid = newUUID()
	}
	ep := endpoint
	if ep == "user" {
		ep = "sofia"
	}
	c := s.newChannel(uuid, name, ep, "outbound")
	c.waiter = results
	if user != "" {
		c.user = user
		s.userCalls[user]++
	}
	if ep == "null" || ep == "loopback" {
		c.codec, c.codecRate, c.media = "L16", 8000, true
	}
	if o.caller != nil {
		c.callUUID = o.caller.callUUID
	}
	var bUUID string
	if ep == "loopback" {
		// mod_loopback's variables come first, in its order (capture 07):
		// the core's, then tech_init's codec, then channel_name.
		bUUID = newUUID()
		sid, _ := c.vars.get("session_id")
		c.vars = c.vars[:0]
		c.vars.set("direction", "outbound")
		c.vars.set("is_outbound", "true")
		c.vars.set("uuid", uuid)
		c.vars.set("call_uuid", c.callUUID)
		c.vars.set("session_id", sid)
		c.vars.set("read_codec", "L16")
		c.vars.set("read_rate", "8000")
		c.vars.set("write_codec", "L16")
		c.vars.set("write_rate", "8000")
		if o.caller != nil {
			c.vars.set("loopback_from_uuid", o.caller.uuid)
		}
	}

	// Caller ID: origination_* variables, else the caller's, else defaults.
	cidName, cidNum := "", "0000000000"
	if o.caller != nil {
		cidName, cidNum = o.caller.prof.cidName, o.caller.prof.cidNumber
	}
	if o.cidName != "" {
		cidName = o.cidName
	}
	if o.cidNum != "" {
		cidNum = o.cidNum
	}
	if v, ok := lv.get("origination_caller_id_name"); ok {
		cidName = v
	}
	if v, ok := lv.get("origination_caller_id_number"); ok {
		cidNum = v
	}
	c.prof.cidName, c.prof.cidNumber = cidName, cidNum
	c.prof.origCIDName, c.prof.origCIDNumber = cidName, cidNum
	c.prof.ani = cidNum
	c.prof.calleeName, c.prof.calleeNumber = "Outbound Call", number
	if calleeNumber != "" {
		c.prof.calleeNumber = calleeNumber
	}
	if v, ok := lv.get("origination_callee_id_name"); ok {
		c.prof.calleeName = v
	}
	c.prof.destination = number
	c.prof.source = "src/switch_ivr_originate.c"
	if ep == "loopback" || ep == "null" {
		c.prof.source = "mod_" + ep
		c.prof.dialplan = "xml"
	}
	if loopContext != "" {
		c.prof.context = loopContext
	}

	if ep == "sofia" {
		c.vars.set("sip_profile_name", profileName)
		if gateway != "" {
			c.vars.set("sip_gateway_name", gateway)
			c.vars.set("sip_profile_name", "gateway")
		}
		c.vars.set("video_media_flow", "disabled")
		c.vars.set("text_media_flow", "disabled")
		c.vars.set("channel_name", name)
		c.vars.set("sip_destination_url", destURL)
	} else {
		c.vars.set("channel_name", name)
	}
	if o.caller != nil {
		a := o.caller
		c.vars.set("max_forwards", "69")
		c.vars.set("originator_codec", "PCMU@8000h@20i@64000b")
		c.vars.set("originator", a.uuid)
		c.vars.set("signal_bond", a.uuid)
		snap := a.prof
		snap.created, snap.answered, snap.hangup, snap.transfer, snap.bridged = 0, 0, 0, 0, 0
		snap.logicalDirection = "inbound"
		c.other, c.otherTyp = &snap, "originator"
	}
	for _, kv := range lv {
		c.vars.set(kv.Name, kv.Value)
	}
	if ep != "loopback" {
		c.vars.set("call_uuid", c.callUUID)
	}
	if o.caller != nil {
		c.vars.set("originating_leg_uuid", o.caller.uuid)
	}
	c.vars.set("originate_early_media", "true")
	c.vars.set("originate_endpoint", ep)
	if ep == "loopback" {
		c.vars.set("other_loopback_leg_uuid", bUUID)
		c.vars.set("loopback_leg", "A")
	}
	if ep == "sofia" {
		c.vars.set("rtp_use_codec_string", "PCMU,PCMA")
		c.vars.set("local_media_ip", "127.0.0.1")
		c.vars.set("local_media_port", "16384")
		c.vars.set("advertised_media_ip", "127.0.0.1")
		c.vars.set("audio_media_flow", "sendrecv")
		c.vars.set("sip_req_uri", strings.TrimPrefix(destURL, "sip:"))
		c.vars.set("sofia_profile_name", profileName)
		c.vars.set("recovery_profile_name", profileName)
		c.vars.set("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060")
		c.vars.set("sip_call_id", newUUID())
	}

	// The state machine up to CS_CONSUME_MEDIA, in FreeSWITCH's order.
	c.running, c.stateNum = "CS_NONE", 1
	c.emit("CHANNEL_OUTGOING", nil, nil)
	c.setRunning("CS_INIT")
	c.stateNum = stateNumbers["CS_ROUTING"]
	c.emit("CHANNEL_CREATE", nil, nil)
	c.emit("CHANNEL_ORIGINATE", nil, nil)
	var b *Channel
	if ep == "loopback" {
		// mod_loopback's on_init creates and launches the B-leg.
		b = s.newLoopbackB(c, bUUID, lv)
		if o.caller != nil {
			// Dialled from a session (bridge): mod_loopback pre-answers
			// the caller unless loopback_no_pre_answer is true.
			if v, _ := o.caller.vars.get("loopback_no_pre_answer"); !isTrue(v) {
				o.caller.preAnswer()
			}
		}
	}
	c.setRunning("CS_ROUTING")
	c.setRunning("CS_CONSUME_MEDIA")

	if v, ok := lv.get("leg_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.addTimer(time.Duration(n)*time.Second, func() { c.hangup("ALLOTTED_TIMEOUT") })
		}
	}
	if b != nil {
		s.routeLoopbackB(b)
		return c, ""
	}
	s.scriptFarEnd(c, outcome)
	return c, ""
}

// sanitizeNumber is switch_sanitize_number: everything from the first '@'
// is dropped, then what follows the last '/' and the last ':' is kept.
func sanitizeNumber(s string) string {
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// isTrue is switch_true for the values that matter here.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1", "enabled", "active", "allow":
		return true
	}
	return false
}

// newLoopbackB creates the B-leg of a loopback/ channel, as mod_loopback's
// channel_on_init does for the A-leg a: an inbound channel named
// loopback/<exten>-b with a clone of a's caller profile, the originate's
// variables (the whole variable event, origination_uuid included: mod_loopback
// copies it before the core consumes it) and the two legs linked by
// other_loopback_leg_uuid. It fires CHANNEL_STATE and CHANNEL_CREATE; its
// routing is left to routeLoopbackB. Callers hold s.mu and have reserved the
// session.
func (s *Sim) newLoopbackB(a *Channel, uuid string, lv vars) *Channel {
	name := "loopback/" + a.prof.destination + "-b"
	b := s.newChannel(uuid, name, "loopback", "inbound")
	b.codec, b.codecRate, b.media = "L16", 8000, true
	b.hitDialplan = true // an inbound channel: Channel-HIT-Dialplan true from CHANNEL_CREATE on (capture 07)
	b.loopLeg, b.loopPeer = "B", a
	a.loopLeg, a.loopPeer = "A", b
	p := a.prof
	p.direction, p.logicalDirection = "inbound", "inbound"
	p.uuid, p.channelName = uuid, name
	p.created, p.answered, p.progress, p.progressMedia = b.prof.created, 0, 0, 0
	p.hangup, p.transfer, p.bridged = 0, 0, 0
	p.networkAddr = ""
	b.prof = p

	sid, _ := b.vars.get("session_id")
	b.vars = b.vars[:0]
	b.vars.set("direction", "inbound")
	b.vars.set("uuid", uuid)
	b.vars.set("call_uuid", uuid)
	b.vars.set("session_id", sid)
	b.vars.set("channel_name", name)
	b.vars.set("read_codec", "L16")
	b.vars.set("read_rate", "8000")
	b.vars.set("write_codec", "L16")
	b.vars.set("write_rate", "8000")
	for _, kv := range lv {
		b.vars.set(kv.Name, kv.Value)
	}
	b.vars.set("other_loopback_leg_uuid", a.uuid)
	if v, ok := a.vars.get("loopback_from_uuid"); ok {
		b.vars.set("other_loopback_from_uuid", v)
	}
	b.vars.set("loopback_leg", "B")

	b.running, b.stateNum = "CS_INIT", 1
	b.setRunning("CS_INIT")
	b.stateNum = stateNumbers["CS_ROUTING"]
	b.emit("CHANNEL_CREATE", nil, nil)
	return b
}

// routeLoopbackB runs the B-leg's CS_ROUTING: the extension is looked up in
// the simulator's dialplan and handed to the B-leg's session thread; a
// missing extension (or context) hangs the B-leg up NO_ROUTE_DESTINATION, as
// the core's standard_on_routing does for an inbound channel, and with it
// the A-leg. Callers hold s.mu.
func (s *Sim) routeLoopbackB(b *Channel) {
	b.setRunning("CS_ROUTING")
	b.setCallState("RINGING")
	apps, ok := dialplanLookup(b.prof.context, b.prof.destination, b.expand)
	if !ok {
		b.hangup("NO_ROUTE_DESTINATION")
		return
	}
	if b.prof.context == "ringback" {
		for _, d := range dialplanDefaults {
			b.vars.setDefault(d.Name, d.Value)
		}
	}
	b.execStart <- apps
}

// scriptFarEnd schedules what the far end does on this leg. Callers hold s.mu.
func (s *Sim) scriptFarEnd(c *Channel, o scenario.Outcome) {
	c.outcome = o
	ring := o.RingFor
	if c.endpoint == "null" {
		c.markAnswered()
		return
	}
	switch o.Kind {
	case scenario.Answer, scenario.Machine:
		// 180 shortly after the INVITE, then 183 (early media) and 200.
		ringing := func() {
			c.progress()
			if o.EarlyMedia {
				c.preAnswer()
			}
		}
		c.addTimer(min(ring/2, 20*time.Millisecond), ringing)
		c.addTimer(ring, func() {
			// The two timers may fire in either order on a loaded machine
			// (or at a high time scale): a phone rings before it answers.
			ringing()
			c.markAnswered()
			s.scriptAnswered(c, o)
		})
	case scenario.NoAnswer:
		c.addTimer(min(ring, 20*time.Millisecond), func() {
			c.progress()
			if o.EarlyMedia {
				c.preAnswer()
			}
		})
	default:
		if o.EarlyMedia {
			c.addTimer(ring/2, func() { c.progress(); c.preAnswer() })
		}
		c.addTimer(ring, func() {
			c.sipStatus = o.SIPStatus
			c.vars.set("sip_hangup_disposition", "recv_refuse")
			c.hangup(o.Cause)
		})
	}
}

// scriptAnswered schedules the far end's behaviour after answer: DTMF and
// its own hangup (BYE). Callers hold s.mu.
func (s *Sim) scriptAnswered(c *Channel, o scenario.Outcome) {
	if o.TalkFor > 0 {
		c.addTimer(o.TalkFor, func() {
			c.sipStatus = 200
			c.vars.set("sip_hangup_disposition", "recv_bye")
			c.hangup("NORMAL_CLEARING")
		})
	}
	sources := strings.Split(o.DTMFSource, ",")
	for i := 0; i < len(o.DTMF); i++ {
		d := o.DTMF[i]
		src := strings.ToUpper(sources[min(i, len(sources)-1)])
		if src == "" {
			src = "RTP"
		}
		c.addTimer(o.DTMFDelay+time.Duration(i)*o.DTMFInterval, func() { c.receiveDTMF(d, src) })
	}
}

// receiveDTMF delivers a digit from the far end: the DTMF event, and the
// digit queued for applications collecting digits. Callers hold s.mu.
func (c *Channel) receiveDTMF(d byte, source string) {
	if !c.ready() {
		return
	}
	c.emit("DTMF", nil, []event.Header{h("DTMF-Digit", string(d)), h("DTMF-Duration", "1600"), h("DTMF-Source", source)})
	c.dtmf = append(c.dtmf, d)
	select {
	case c.dtmfWake <- struct{}{}:
	default:
	}
}
