package phone

import (
	"strings"
	"testing"
)

func TestLenient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"+15551230001", "+15551230001", true},
		{"15551230001", "+15551230001", true},
		{"+52 (55) 1234-5678", "+525512345678", true},
		{"0052 55 1234 5678", "+525512345678", true},
		{"+0052551234", "", false},
		{"1001", "", false},
		{"agent", "", false},
		{"+1555123000112345", "", false},
		{"", "", false},
		{"  +1 555 123 0001 ", "+15551230001", true},
		{"5215512345678", "+5215512345678", true},
		{"555-CALL-NOW", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, ok := Lenient(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Lenient(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestE164(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{"+15551230001", "+15551230001", ""},
		{" +52 (55) 1234-5678 ", "+525512345678", ""},
		{"15551230001", "+15551230001", ""},
		{"0052 55 1234 5678", "", "country code, not 0"},
		{"12ab", "", "unexpected character 'a'"},
		{"+123456", "", "7 to 15 digits"},
		{"+1234567890123456", "", "7 to 15 digits"},
	} {
		got, err := E164(tc.in)
		if got != tc.want || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("E164(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
}
