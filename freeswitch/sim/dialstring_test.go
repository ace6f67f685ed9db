package sim

import (
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"sofia/gateway/carrier/1 &park", []string{"sofia/gateway/carrier/1", "&park"}},
		{"  a   b  ", []string{"a", "b"}},
		{"{x='a b'}sofia/x/1 &park", []string{"{x='a b'}sofia/x/1", "&park"}},
		// An unquoted space splits inside {}: FreeSWITCH does the same (capture 16).
		{"{x=a b}sofia/x/1 &park", []string{"{x=a", "b}sofia/x/1", "&park"}},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := splitArgs(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitArgs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDialString(t *testing.T) {
	t.Parallel()
	type leg struct {
		vars   map[string]string
		target string
	}
	tests := []struct {
		name   string
		in     string
		ok     bool
		global map[string]string
		groups [][]leg
	}{
		{"plain", "sofia/gateway/carrier/1", true, map[string]string{}, [][]leg{{{map[string]string{}, "sofia/gateway/carrier/1"}}}},
		{"global vars with quoted comma", "{a=1,b='x,y',c='sp ace'}user/1000", true,
			map[string]string{"a": "1", "b": "x,y", "c": "sp ace"}, [][]leg{{{map[string]string{}, "user/1000"}}}},
		{"simultaneous with per-leg vars", "{t=3}[origination_uuid=u1]sofia/internal/1@h,[origination_uuid=u2]sofia/internal/2@h", true,
			map[string]string{"t": "3"}, [][]leg{{
				{map[string]string{"origination_uuid": "u1"}, "sofia/internal/1@h"},
				{map[string]string{"origination_uuid": "u2"}, "sofia/internal/2@h"},
			}}},
		{"failover", "error/USER_BUSY|null/1", true, map[string]string{},
			[][]leg{{{map[string]string{}, "error/USER_BUSY"}}, {{map[string]string{}, "null/1"}}}},
		{"comma inside brackets does not split", "[a=1,b=2]null/1", true, map[string]string{},
			[][]leg{{{map[string]string{"a": "1", "b": "2"}, "null/1"}}}},
		{"unterminated global vars", "{a=1", false, nil, nil},
		{"unterminated leg vars", "[a=1null/1", false, nil, nil},
		{"empty", "", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := parseDialString(tt.in)
			if ok != tt.ok {
				t.Fatalf("parseDialString(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if !ok {
				return
			}
			toMap := func(v vars) map[string]string {
				m := map[string]string{}
				for _, h := range v {
					m[h.Name] = h.Value
				}
				return m
			}
			if got := toMap(d.global); !reflect.DeepEqual(got, tt.global) {
				t.Errorf("global = %v, want %v", got, tt.global)
			}
			var groups [][]leg
			for _, g := range d.groups {
				var legs []leg
				for _, l := range g {
					legs = append(legs, leg{toMap(l.vars), l.target})
				}
				groups = append(groups, legs)
			}
			if !reflect.DeepEqual(groups, tt.groups) {
				t.Errorf("groups = %v, want %v", groups, tt.groups)
			}
		})
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
