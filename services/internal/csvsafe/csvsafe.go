// Package csvsafe defuses spreadsheet formulas in the cells of CSV files
// Ringback writes (CSV injection): a spreadsheet opening an export must
// never run a caller's or a recipient's text as a formula.
package csvsafe

import (
	"strconv"
	"strings"
)

// Cell returns s safe to open in a spreadsheet: a cell starting with =,
// +, -, @, tab or carriage return gets a leading apostrophe, unless it is
// a plain decimal number ("-2.5", or "+525512345678": phone numbers stay
// as they are).
func Cell(s string) string {
	if s == "" || !strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return s
	}
	// ParseFloat also reads exponents, Inf, NaN, hexadecimal and digit
	// separators; none of those is left bare.
	if _, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eEnNiIxXpP_") {
		return s
	}
	return "'" + s
}

// Cells makes every cell of a row safe, in place, and returns it.
func Cells(row []string) []string {
	for i, s := range row {
		row[i] = Cell(s)
	}
	return row
}
