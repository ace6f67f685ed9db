package tariffcsv

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse: it must never panic nor fail
// (I/O errors aside), every error must name a line of the file, and what it
// accepts must survive Write and Parse unchanged (the export of a tariff is
// importable as it is).
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("prefix,destination,rate_per_minute\n34,Spain,0.01\n"))
	f.Add([]byte("\ufeffPrefix;Destination;Rate_per_minute;Billing\n+34;\"Spain; fixed\";0,01;60/60\n"))
	f.Add([]byte("prefix,destination,rate_per_minute,effective_from\n1,US,1,2026-01-01\n1,US,2,2026-01-01\n"))
	f.Add([]byte("prefix,destination,rate_per_minute\n\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(bytes.NewReader(data), Options{MaxRows: 1000, MaxErrors: 50})
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range res.Errors {
			if e.Line < 1 || e.Line > lines || e.Reason == "" {
				t.Fatalf("error %+v outside the file's %d lines or without a reason", e, lines)
			}
		}
		if res.ErrorCount > 0 {
			if len(res.Errors) == 0 {
				t.Fatalf("%d errors counted, none reported", res.ErrorCount)
			}
			return
		}
		var out strings.Builder
		if err := Write(&out, Rates(res.Rates)); err != nil {
			t.Fatalf("Write of accepted rates: %v", err)
		}
		again, err := Parse(strings.NewReader(out.String()), Options{MaxRows: 1000})
		if err != nil || again.ErrorCount > 0 {
			t.Fatalf("re-parse of the export: %v %v\n%s", err, again.Errors, out.String())
		}
		if len(res.Rates) == 0 && len(again.Rates) == 0 {
			return
		}
		if !reflect.DeepEqual(again.Rates, res.Rates) {
			t.Fatalf("round trip changed the rates:\n%+v\n%+v", res.Rates, again.Rates)
		}
	})
}
