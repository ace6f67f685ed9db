package csvsafe

import (
	"slices"
	"testing"
)

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "",
		"Henry Case":         "Henry Case",
		"=HYPERLINK(\"x\")":  "'=HYPERLINK(\"x\")",
		"@SUM(A1:A2)":        "'@SUM(A1:A2)",
		"+525512345678":      "+525512345678",
		"-2.5":               "-2.5",
		"-1e3":               "'-1e3",
		"+Inf":               "'+Inf",
		"-0x1p-2":            "'-0x1p-2",
		"+1_000":             "'+1_000",
		"-cmd|' /C calc'!A0": "'-cmd|' /C calc'!A0",
		"\tTAB":              "'\tTAB",
		"\r=1+1":             "'\r=1+1",
		"1=1":                "1=1",
	} {
		if got := Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Cells([]string{"a", "=b", "+34"}); !slices.Equal(got, []string{"a", "'=b", "+34"}) {
		t.Errorf("Cells: %q", got)
	}
}
