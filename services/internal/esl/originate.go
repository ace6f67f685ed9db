package esl

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OriginateRequest describes one leg to place.
type OriginateRequest struct {
	// UUID becomes the leg's origination_uuid, so every event of the leg
	// carries it as Unique-ID; NewUUID() if empty.
	UUID string
	// Dialstring is the endpoint: "sofia/gateway/carrier/15551230000",
	// "user/1000", "loopback/9664". It may start with [per-leg] variables;
	// it may not contain spaces, quotes or backslashes (global variables
	// belong in Vars, where they are escaped).
	Dialstring string
	// CallerIDNumber and CallerIDName set origination_caller_id_number and
	// origination_caller_id_name.
	CallerIDNumber, CallerIDName string
	// Timeout is originate_timeout, in whole seconds rounded up; 0 leaves
	// FreeSWITCH's default (60 s).
	Timeout time.Duration
	// Vars are channel variables set when the leg is created, so they are
	// on all of its events. Values may contain anything but line breaks,
	// NUL, unbalanced braces and "${" (which FreeSWITCH refuses); names are
	// [A-Za-z0-9_.-]+.
	Vars map[string]string
	// App is what the answered leg runs; default "&park()", since every
	// decision is taken in Go. Form: &app(args), without spaces.
	App string
}

// Leg is a placed (answered) leg.
type Leg struct {
	// Node is the switch the leg lives on.
	Node string
	// UUID is its origination_uuid.
	UUID string
}

// Originate places a leg with `bgapi originate` and waits for the
// BACKGROUND_JOB: it returns when the far end answered (the leg is then
// parked, or running App) or the attempt failed. node "" means Pick().
//
// A refusal is a *CommandError whose Cause() is the hangup cause
// (USER_BUSY, NO_ANSWER, ...). Before anything is sent the call waits for
// the node's sessions-per-second budget, failing with ErrRateLimited if no
// token comes before ctx's deadline. If ctx ends after the originate was
// sent, the leg is hung up (uuid_kill ORIGINATOR_CANCEL, best effort) so
// that no untracked call is left ringing. ErrConnectionLost means the
// outcome is unknown: reconcile the leg by UUID at the next NodeUp.
func (c *Client) Originate(ctx context.Context, node string, req OriginateRequest) (Leg, error) {
	if req.UUID == "" {
		req.UUID = NewUUID()
	}
	if node == "" {
		node = c.Pick()
	}
	leg := Leg{Node: node, UUID: req.UUID}
	fail := func(err error) (Leg, error) {
		return leg, fmt.Errorf("originate leg %s on %s: %w", req.UUID, node, err)
	}
	if node == "" {
		return fail(ErrNotConnected)
	}
	cmd, err := req.command()
	if err != nil {
		return fail(err)
	}
	n, _, err := c.session(node) // fail fast, before spending a token
	if err != nil {
		return fail(err)
	}
	n.inflight.Add(1)
	defer n.inflight.Add(-1)
	if n.limiter != nil {
		if err := n.limiter.wait(ctx); err != nil {
			return fail(err)
		}
	}
	_, s, err := c.session(node) // the session may have changed while waiting
	if err != nil {
		return fail(err)
	}
	body, err := s.bgapiWait(ctx, "originate", cmd)
	if err != nil {
		if ctx.Err() != nil {
			c.cancelLeg(s, node, req.UUID)
		}
		return fail(err)
	}
	body = strings.TrimSpace(body)
	switch {
	case isNegative(body):
		return fail(&CommandError{Command: "originate", Reply: body})
	case !strings.HasPrefix(body, "+OK"):
		return fail(fmt.Errorf("%w: unexpected originate result %.80q", ErrProtocol, body))
	}
	return leg, nil
}

// cancelLeg hangs up a leg whose originate the caller gave up on. It is
// bounded and synchronous, so no goroutine outlives the call.
func (c *Client) cancelLeg(s *session, node, uuid string) {
	ctx, cancel := context.WithTimeout(c.ctx, min(c.cfg.CommandTimeout, 2*time.Second))
	defer cancel()
	f, err := s.command(ctx, ctAPIResponse, "api uuid_kill "+uuid+" ORIGINATOR_CANCEL")
	if err != nil {
		c.cfg.Logger.Warn("could not cancel abandoned originate", "node", node, "leg", uuid, "err", err)
		return
	}
	c.cfg.Logger.Debug("cancelled abandoned originate", "node", node, "leg", uuid, "reply", trimBody(f.body))
}

// command renders the originate API arguments:
//
//	originate {origination_uuid=...,name=value,...}<dialstring> &park()
func (r OriginateRequest) command() (string, error) {
	if !validToken(r.UUID, "-") || len(r.UUID) > 64 {
		return "", fmt.Errorf("%w: leg UUID %q", ErrInvalid, r.UUID)
	}
	if err := checkDialPart("dialstring", r.Dialstring); err != nil {
		return "", err
	}
	if r.Dialstring[0] == '{' || r.Dialstring[0] == '<' {
		return "", fmt.Errorf("%w: dialstring starts with %q: put global variables in Vars", ErrInvalid, r.Dialstring[0])
	}
	app := r.App
	if app == "" {
		app = "&park()"
	}
	if err := checkDialPart("app", app); err != nil {
		return "", err
	}
	vars := map[string]string{}
	for k, v := range r.Vars {
		if !validToken(k, "_.-") {
			return "", fmt.Errorf("%w: variable name %q", ErrInvalid, k)
		}
		vars[k] = v
	}
	if _, ok := vars["origination_uuid"]; ok {
		return "", fmt.Errorf("%w: set the leg UUID with OriginateRequest.UUID, not Vars", ErrInvalid)
	}
	for name, val := range map[string]string{
		"origination_caller_id_number": r.CallerIDNumber,
		"origination_caller_id_name":   r.CallerIDName,
	} {
		if val == "" {
			continue
		}
		if _, dup := vars[name]; dup {
			return "", fmt.Errorf("%w: %s set both as a field and in Vars", ErrInvalid, name)
		}
		vars[name] = val
	}
	if r.Timeout < 0 {
		return "", fmt.Errorf("%w: negative timeout", ErrInvalid)
	}
	if r.Timeout > 0 {
		if _, dup := vars["originate_timeout"]; dup {
			return "", fmt.Errorf("%w: originate_timeout set both as Timeout and in Vars", ErrInvalid)
		}
		vars["originate_timeout"] = strconv.FormatInt(int64((r.Timeout+time.Second-1)/time.Second), 10)
	}

	var b strings.Builder
	b.WriteString("originate {origination_uuid=")
	b.WriteString(r.UUID)
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		enc, err := encodeValue(vars[k])
		if err != nil {
			return "", fmt.Errorf("variable %s: %w", k, err)
		}
		b.WriteByte(',')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(enc)
	}
	b.WriteByte('}')
	b.WriteString(r.Dialstring)
	b.WriteByte(' ')
	b.WriteString(app)
	return b.String(), nil
}

// encodeValue renders v for the right-hand side of name=v inside the {...}
// of an `originate` command so that FreeSWITCH 1.10 stores exactly v.
//
// FreeSWITCH parses that text three times (switch_utils.c, switch_event.c):
//
//  1. originate_function splits the whole command on spaces with
//     switch_separate_string(' '), whose cleanup_separated_string strips
//     single quotes and resolves \' \" \\ \n \r \t \s escapes;
//  2. switch_event_create_brackets splits the {...} body on ',' (honouring
//     quotes and backslash escapes) and cleans each item again, turning
//     \, into ',';
//  3. it splits each item once on '=' and cleans the value a third time,
//     which also trims leading and trailing spaces.
//
// Quotes therefore do not protect a comma (they are gone after step 1);
// a comma needs "\," to survive to step 2. So v is escaped for step 3,
// then step 2, then step 1, innermost first. Values with a space are
// wrapped in single quotes for step 1, which gives the familiar
// name='John Doe' for the common case.
func encodeValue(v string) (string, error) {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", fmt.Errorf("%w: value contains a line break or NUL", ErrInvalid)
	}
	if !bracesBalanced(v) {
		// switch_find_end_paren counts braces without regard to quotes or
		// escapes, so an unbalanced one would end the {...} block early.
		return "", fmt.Errorf("%w: value has unbalanced braces", ErrInvalid)
	}
	if hasVarExpansion(v) {
		// switch_channel_set_variable_var_check refuses such values
		// silently (switch_string_var_check_const); refuse them loudly.
		return "", fmt.Errorf("%w: value contains \"${\", which FreeSWITCH refuses", ErrInvalid)
	}
	// Step 3: escape backslashes and quotes; protect edge spaces from trimming.
	lead := len(v) - len(strings.TrimLeft(v, " "))
	trail := 0
	if lead < len(v) {
		trail = len(v) - len(strings.TrimRight(v, " "))
	}
	var s3 strings.Builder
	for i := 0; i < len(v); i++ {
		switch ch := v[i]; {
		case ch == '\\':
			s3.WriteString(`\\`)
		case ch == '\'':
			s3.WriteString(`\'`)
		case ch == ' ' && (i < lead || i >= len(v)-trail):
			s3.WriteString(`\s`)
		default:
			s3.WriteByte(ch)
		}
	}
	// Step 2: escape backslashes, quotes and the item separator.
	s2 := escapeChars(s3.String(), `\',`)
	// Step 1: escape backslashes and quotes; quote if a space remains.
	s1 := escapeChars(s2, `\'`)
	if strings.IndexByte(s1, ' ') >= 0 {
		s1 = "'" + s1 + "'"
	}
	return s1, nil
}

// escapeChars puts a backslash before every byte of s found in set.
func escapeChars(s, set string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func bracesBalanced(s string) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// hasVarExpansion mirrors switch_string_var_check_const: a '$' followed,
// after any backslashes, by '{'.
func hasVarExpansion(s string) bool {
	dol := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '$':
			dol = true
		case dol && s[i] == '{':
			return true
		case dol && s[i] != '\\':
			dol = false
		}
	}
	return false
}

// checkDialPart refuses dialstring or app text that FreeSWITCH's first,
// space-splitting parse would reinterpret.
func checkDialPart(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch <= ' ' || ch == 0x7f || ch == '\'' || ch == '\\' {
			return fmt.Errorf("%w: %s contains %q", ErrInvalid, what, ch)
		}
	}
	return nil
}

// validToken reports whether s is non-empty ASCII letters, digits and
// bytes from extra.
func validToken(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || strings.IndexByte(extra, ch) >= 0) {
			return false
		}
	}
	return true
}
