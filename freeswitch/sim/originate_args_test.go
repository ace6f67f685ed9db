package sim_test

// End-to-end checks of how the originate API parses its argument (see
// originate.go and dialstring_test.go for the references to FreeSWITCH's
// source).

import (
	"strings"
	"testing"
)

func TestOriginateArgumentParsing(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	c := dialESL(t, s)

	uuid := testUUID()
	args := "{origination_uuid=" + uuid +
		`,origination_caller_id_name='Plain Tester'` + // capture 14
		`,quoted='x,y'` + // the space split drops the quotes: the comma then splits
		`,escaped=x\\,y` + // "\\," is "\," after the space split, "," after the comma split
		`,quote=O\'Brien` +
		`,spaces=\\\\s\\\\spadded\\\\s` +
		"}null/1 &park"
	if got := c.api("originate " + args); got != "+OK "+uuid+"\n" {
		t.Fatalf("originate %s: %q", args, got)
	}
	for name, want := range map[string]string{
		"origination_caller_id_name": "Plain Tester",
		"quoted":                     "x",
		"escaped":                    "x,y",
		"quote":                      "O'Brien",
		"spaces":                     "  padded ",
	} {
		if got := c.api("uuid_getvar " + uuid + " " + name); got != want {
			t.Errorf("uuid_getvar %s = %q, want %q", name, got, want)
		}
	}
	c.api("uuid_kill " + uuid)

	// A lone quote keeps the space split from splitting: one argument.
	if got := c.api("originate {a=O'Brien}null/1 &park"); !strings.HasPrefix(got, "-USAGE") {
		t.Errorf("originate with a lone quote: %q, want -USAGE", got)
	}

	// switch_ivr_originate parses each failover group when it dials it: a
	// group that does not parse is never reached when an earlier one
	// answers ...
	uuid = testUUID()
	if got := c.api("originate [origination_uuid=" + uuid + "]null/1|[a=1null/2 &park"); got != "+OK "+uuid+"\n" {
		t.Errorf("originate with a bad second group: %q, want +OK %s", got, uuid)
	}
	c.api("uuid_kill " + uuid)
	// ... and fails the originate when it is.
	if got := c.api("originate error/USER_BUSY|[a=1null/2 &park"); got != "-ERR DESTINATION_OUT_OF_ORDER\n" {
		t.Errorf("originate reaching a bad group: %q, want -ERR DESTINATION_OUT_OF_ORDER", got)
	}
}
