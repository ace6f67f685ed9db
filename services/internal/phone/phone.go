// Package phone reads phone numbers as people and CRMs type them.
package phone

import "strings"

// Lenient returns s in E.164 form (+ and 7 to 15 digits, no leading zero),
// reading it as CRMs and people write numbers: "+52 (55) 1234-5678",
// "5215512345678" and "0052..." (00 is the international prefix) all give
// +52.... Spaces, dashes, dots and parentheses are ignored; anything else
// makes it not a number.
func Lenient(s string) (string, bool) {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", false
		}
	}
	d := b.String()
	if !strings.HasPrefix(s, "+") {
		d = strings.TrimPrefix(d, "00")
	}
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return "+" + d, true
}
