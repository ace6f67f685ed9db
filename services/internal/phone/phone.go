// Package phone reads phone numbers as people and CRMs type them.
package phone

import (
	"fmt"
	"strings"
)

// digits returns the digits of s, ignoring the separators people type
// (spaces, dashes, dots, parentheses) and a leading "+"; bad is the first
// other character (0 when there is none).
func digits(s string) (d string, bad rune) {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", r
		}
	}
	return b.String(), 0
}

// E164 validates a number and returns it in E.164 form (+ and 7 to 15
// digits, no leading zero), with an error saying what is wrong otherwise.
// Separators are tolerated; an international prefix ("00") is not: the
// number must start with its country code.
func E164(s string) (string, error) {
	d, bad := digits(strings.TrimSpace(s))
	switch {
	case bad != 0:
		return "", fmt.Errorf("number %q: unexpected character %q", s, bad)
	case len(d) < 7 || len(d) > 15:
		return "", fmt.Errorf("number %q: an E.164 number has 7 to 15 digits", s)
	case d[0] == '0':
		return "", fmt.Errorf("number %q: an E.164 number starts with a country code, not 0", s)
	}
	return "+" + d, nil
}

// Lenient returns s in E.164 form, reading it as CRMs and people write
// numbers: "+52 (55) 1234-5678", "5215512345678" and "0052..." (00 is the
// international prefix) all give +52.... ok is false when s is not a number.
func Lenient(s string) (string, bool) {
	s = strings.TrimSpace(s)
	d, bad := digits(s)
	if bad != 0 {
		return "", false
	}
	if !strings.HasPrefix(s, "+") {
		d = strings.TrimPrefix(d, "00")
	}
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return "+" + d, true
}
