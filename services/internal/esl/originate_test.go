package esl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/esl"
)

// TestOriginate places legs with the default scenario's far ends and checks
// the result and the typed error of each outcome.
func TestOriginate(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	c := dial(t, testConfig(s.ESLAddr()), rec.handlers())
	node := s.ESLAddr()

	tests := []struct {
		name      string
		req       esl.OriginateRequest
		wantCause string // "" = answered
	}{
		{"answered", esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15551230000", Timeout: answerTimeout, CallerIDNumber: "15550001111"}, ""},
		{"busy", esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15551230486"}, "USER_BUSY"},
		{"no answer within originate_timeout", esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15551230408", Timeout: time.Second}, "NO_ANSWER"},
		{"unknown gateway", esl.OriginateRequest{Dialstring: "sofia/gateway/nope/15551230000"}, "INVALID_GATEWAY"},
		{"per-leg variables in the dialstring", esl.OriginateRequest{Dialstring: "[leg_tag=x]sofia/gateway/carrier/15551240000", Timeout: answerTimeout}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tc.req.UUID = esl.NewUUID()
			leg, err := c.Originate(ctx, node, tc.req)
			if leg.UUID != tc.req.UUID || leg.Node != node {
				t.Errorf("leg = %+v, want uuid %s on %s", leg, tc.req.UUID, node)
			}
			if tc.wantCause == "" {
				if err != nil {
					t.Fatalf("Originate: %v", err)
				}
				if got, err := c.API(ctx, node, "uuid_exists "+leg.UUID); err != nil || got != "true" {
					t.Errorf("uuid_exists = %q, %v; want true", got, err)
				}
				rec.waitEvent(t, 5*time.Second, "CHANNEL_ANSWER", leg.UUID)
				return
			}
			var ce *esl.CommandError
			if !errors.As(err, &ce) {
				t.Fatalf("Originate error = %v, want a *CommandError", err)
			}
			if ce.Cause() != tc.wantCause {
				t.Errorf("Cause() = %q (%v), want %q", ce.Cause(), err, tc.wantCause)
			}
		})
	}
}

// TestOriginateVariablesArriveIntact sets awkward channel variables through
// Originate and reads them back with uuid_getvar.
//
// Values marked simDiverges need backslash escapes, which real FreeSWITCH
// resolves (see encode_test.go, which checks every one of these against a
// transcription of FreeSWITCH 1.10.12's parser) but the simulator does
// not: it treats single quotes as the only quoting and keeps backslashes
// literally. Those cases skip, with what the simulator stored, until the
// simulator follows FreeSWITCH; they pass as soon as it does.
func TestOriginateVariablesArriveIntact(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	c := dial(t, testConfig(s.ESLAddr()), esl.Handlers{})
	node := s.ESLAddr()
	tests := []struct {
		name, value string
		simDiverges bool
	}{
		{"spaces", "John Smith Jr", false},
		{"double quotes", `say "hello" twice`, false},
		{"equals and semicolons", "a=b;c=d", false},
		{"unicode", "ñandú 漢字 ☎", false},
		{"pipes ampersands percent", "x|y&z 100%", false},
		{"balanced braces", "{json}", false},
		{"comma", "Smith, John", true},
		{"single quote", "O'Brien", true},
		{"quotes and commas", `it's "a", test`, true},
		{"backslash", `C:\dir\file`, true},
		{"leading and trailing spaces", "  padded  ", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			leg, err := c.Originate(ctx, node, esl.OriginateRequest{
				Dialstring:   "sofia/gateway/carrier/15557770000",
				Timeout:      answerTimeout,
				CallerIDName: tc.value,
				Vars:         map[string]string{"ringback_note": tc.value, "ringback_after": "after"},
			})
			if err != nil {
				if tc.simDiverges {
					t.Skipf("simulator diverges from FreeSWITCH: originate with %q failed: %v", tc.value, err)
				}
				t.Fatalf("Originate: %v", err)
			}
			for _, v := range []struct{ name, want string }{
				{"ringback_note", tc.value}, {"origination_caller_id_name", tc.value}, {"ringback_after", "after"},
			} {
				got, err := c.API(ctx, node, "uuid_getvar "+leg.UUID+" "+v.name)
				if err != nil {
					t.Fatalf("uuid_getvar %s: %v", v.name, err)
				}
				if got != v.want {
					if tc.simDiverges {
						t.Skipf("simulator diverges from FreeSWITCH: %s stored as %q, FreeSWITCH 1.10 stores %q", v.name, got, v.want)
					}
					t.Errorf("%s = %q, want %q", v.name, got, v.want)
				}
			}
		})
	}
}
