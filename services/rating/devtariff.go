package rating

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"

	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// DevTariffName is the tariff `make run` gives the development account.
const DevTariffName = "Development (USD)"

// devTariffCSV is docs/examples/tariff.csv (a test keeps the two equal):
// common destinations (+1, +33, +34, +44, +49, +52, +55, ...) and no rate
// for +88, to see DESTINATION_NOT_SUPPORTED.
//
//go:embed devtariff.csv
var devTariffCSV []byte

// EnsureDevTariff is for development (`make run`): it creates the
// development tariff unless it exists, fills it, and assigns it to the
// account (postpaid) unless the account already has a tariff.
func (s *Service) EnsureDevTariff(ctx context.Context, accountID string) (tariffID string, err error) {
	var row *TariffRow
	list, err := s.Store.ListTariffs(ctx, "", 1000)
	if err != nil {
		return "", err
	}
	for _, t := range list {
		if t.Name == DevTariffName {
			row = t
		}
	}
	if row == nil {
		row, err = s.Store.CreateTariff(ctx, DevTariffName, "development tariff of make run (docs/examples/tariff.csv)", "USD")
		if errors.Is(err, ErrNameTaken) {
			return s.EnsureDevTariff(ctx, accountID) // created meanwhile
		}
		if err != nil {
			return "", err
		}
	}
	if row.RateCount == 0 {
		res, err := tariffcsv.Parse(bytes.NewReader(devTariffCSV), tariffcsv.Options{})
		if err != nil || res.ErrorCount > 0 {
			return "", fmt.Errorf("development tariff: %v %v", err, res.Errors)
		}
		if row, err = s.Store.ImportRates(ctx, row.ID, ImportReplace, res.Rates); err != nil {
			return "", err
		}
		if err := s.Rater.PutCompiled(row, res.Rates); err != nil {
			return "", err
		}
		s.Server.notify(Change{Kind: "tariff", ID: row.ID, Version: row.Version})
	}
	b, err := s.Store.GetBilling(ctx, accountID)
	if err != nil {
		return "", err
	}
	if b.TariffID == "" {
		id := row.ID
		if _, err := s.Store.UpdateBilling(ctx, accountID, BillingChange{TariffID: &id}); err != nil {
			return "", err
		}
		s.Rater.Forget(accountID)
		s.Server.notify(Change{Kind: "billing", ID: accountID})
	}
	return row.ID, nil
}
