package rating

import (
	"bytes"
	"os"
	"testing"
)

// The development tariff is the documented example file.
func TestDevTariffIsTheDocumentedExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/examples/tariff.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, devTariffCSV) {
		t.Fatal("services/rating/devtariff.csv differs from docs/examples/tariff.csv: copy one onto the other")
	}
}
