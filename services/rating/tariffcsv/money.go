package tariffcsv

import (
	"fmt"
	"strings"
)

// MicrosPerUnit is the number of micro-units in one currency unit.
const MicrosPerUnit = 1_000_000

// maxIntDigits bounds the integer part so the result fits in int64 with room
// to spare (999,999,999,999.999999 units is about 1e18 micros).
const maxIntDigits = 12

// MoneyError explains why ParseMicros refused an amount.
type MoneyError struct {
	Value  string // the input, as given
	Reason string // ReasonBadMoney or ReasonMoneyOutOfRange
	Detail string // what is wrong, e.g. "more than 6 decimals"
}

func (e *MoneyError) Error() string {
	return fmt.Sprintf("amount %s: %s", quote(e.Value), e.Detail)
}

// ParseMicros parses a non-negative decimal amount of currency units such as
// "0.0125", "1", "1.5" or ".5" into micro-units, exactly. Surrounding spaces
// are ignored. It refuses empty input, signs, exponents, thousands or decimal
// commas and any non-zero digit beyond the sixth decimal, since accepting
// them would mean guessing or rounding a price. Errors are *MoneyError.
func ParseMicros(s string) (int64, error) {
	v, reason, detail := parseMicros(s)
	if reason != "" {
		return 0, &MoneyError{Value: s, Reason: reason, Detail: detail}
	}
	return v, nil
}

// parseMicros is ParseMicros without the error allocation, for the per-row
// hot path: reason is "" on success and detail is always a constant.
func parseMicros(s string) (v int64, reason, detail string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ReasonBadMoney, "empty amount"
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart, frac := s[:i], ""
	if i < len(s) {
		if s[i] != '.' {
			return 0, ReasonBadMoney, badMoneyChar(s, i)
		}
		frac = s[i+1:]
		for j := 0; j < len(frac); j++ {
			if !isDigit(frac[j]) {
				return 0, ReasonBadMoney, badMoneyChar(s, i+1+j)
			}
		}
	}
	if intPart == "" && frac == "" {
		return 0, ReasonBadMoney, "no digits"
	}
	// Zeros past the sixth decimal lose nothing (spreadsheets pad to a
	// fixed number of decimals); any other digit there would be rounded.
	if len(frac) > 6 {
		if strings.TrimRight(frac[6:], "0") != "" {
			return 0, ReasonBadMoney, "more than 6 decimals"
		}
		frac = frac[:6]
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > maxIntDigits {
		return 0, ReasonMoneyOutOfRange, "amount too large"
	}
	for j := 0; j < len(intPart); j++ {
		v = v*10 + int64(intPart[j]-'0')
	}
	for j := 0; j < 6; j++ {
		v *= 10
		if j < len(frac) {
			v += int64(frac[j] - '0')
		}
	}
	return v, "", ""
}

// badMoneyChar names the most likely mistake for an unexpected character so
// the user knows what to change.
func badMoneyChar(s string, i int) string {
	switch c := s[i]; {
	case c == '-' && i == 0:
		return "negative amounts are not allowed"
	case c == '+' && i == 0:
		return "signs are not allowed"
	case c == 'e' || c == 'E':
		return "exponents are not allowed"
	case c == ',':
		return "',' is not allowed (no thousands separators; use '.' for decimals)"
	case c == '.':
		return "more than one '.'"
	case c == ' ' || c == '\t' || c == '\'' || c == '_':
		return "separators inside the number are not allowed"
	default:
		return "expected a decimal number such as 0.0125"
	}
}

// FormatMicros writes micro-units as the shortest exact decimal amount:
// 12500 is "0.0125", 1000000 is "1", 500000 is "0.5".
func FormatMicros(m int64) string {
	var buf [24]byte
	return string(appendMicros(buf[:0], m))
}

func appendMicros(dst []byte, m int64) []byte {
	u := uint64(m)
	if m < 0 {
		dst = append(dst, '-')
		u = -u // two's complement: correct for math.MinInt64 too
	}
	var tmp [20]byte
	n := len(tmp)
	for q := u / MicrosPerUnit; ; q /= 10 {
		n--
		tmp[n] = byte('0' + q%10)
		if q < 10 {
			break
		}
	}
	dst = append(dst, tmp[n:]...)
	frac := u % MicrosPerUnit
	if frac == 0 {
		return dst
	}
	var f [6]byte
	for j := 5; j >= 0; j-- {
		f[j] = byte('0' + frac%10)
		frac /= 10
	}
	end := 6
	for f[end-1] == '0' {
		end--
	}
	dst = append(dst, '.')
	return append(dst, f[:end]...)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
