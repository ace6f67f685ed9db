package origination

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
)

// Rater is what the engine needs from rating: may this number be dialed,
// at what rate and for how long; and, when a leg is answered, how long it
// may really last on the balance left.
type Rater interface {
	// Authorize returns the leg's rating, or a refusal: an error carrying
	// a gRPC status with the reason (DESTINATION_NOT_SUPPORTED,
	// BLOCKED_DESTINATION, INSUFFICIENT_BALANCE), passed to the client as
	// it is. Any other error means rating could not answer.
	Authorize(ctx context.Context, accountID, number string, role Role, callID string) (LegRating, error)
	// Reserve holds the answered leg's cost and returns the seconds it may
	// last (0: hang it up now).
	Reserve(ctx context.Context, c *Call, role Role) (grantedS int, err error)
}

// LegRating is an authorized leg's rate, Direction and time limit.
type LegRating struct {
	Rate         *LegRate
	Direction    *Direction
	MaxDurationS int
}

// ErrRatingUnavailable: rating did not answer, so nothing is dialed (an
// unrated call could be a fraudulent one).
var ErrRatingUnavailable = errors.New("rating unavailable")

// refusal is rating's answer passed on to the client: its status (code and
// ErrorInfo reason) unchanged, and its message without gRPC's decoration.
type refusal struct{ st *status.Status }

func (r refusal) Error() string              { return r.st.Message() }
func (r refusal) GRPCStatus() *status.Status { return r.st }

// RatingClient is the Rater over rating's gRPC API.
type RatingClient struct {
	C ratingv1.RatingServiceClient
}

// Authorize implements Rater.
func (r RatingClient) Authorize(ctx context.Context, accountID, number string, role Role, callID string) (LegRating, error) {
	resp, err := r.C.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: accountID, Number: number, Leg: string(role), CallId: callID})
	if err != nil {
		switch st := status.Convert(err); st.Code() {
		case codes.FailedPrecondition, codes.InvalidArgument:
			return LegRating{}, refusal{st} // the client's to see
		}
		return LegRating{}, fmt.Errorf("%w: %v", ErrRatingUnavailable, err)
	}
	ar, d := resp.GetRate(), resp.GetDirection()
	return LegRating{
		Rate: &LegRate{TariffID: ar.GetTariffId(), Prefix: ar.GetPrefix(), Destination: ar.GetDestination(),
			PerMinuteMicros: ar.GetRatePerMinuteMicros(), ConnectionFeeMicros: ar.GetConnectionFeeMicros(),
			MinSeconds: ar.GetMinSeconds(), IncrementSeconds: ar.GetIncrementSeconds(), Currency: ar.GetCurrency()},
		Direction: &Direction{Country: d.GetCountry(), CountryName: d.GetCountryName(), Region: d.GetRegion(),
			Carrier: d.GetCarrier(), LineType: d.GetLineType().String(), TimeZones: d.GetTimeZones(), Valid: d.GetValid()},
		MaxDurationS: int(resp.GetMaxDurationS()),
	}, nil
}

// ChargeLeg names a leg for its reservation and charge: "first", "second",
// and for a redialed call's later attempts "first.2", "second.3", so each
// attempt's answered legs are charged once each.
func ChargeLeg(role string, attempt int) string {
	if attempt > 1 {
		return role + "." + itoa(int64(attempt))
	}
	return role
}

// Reserve implements Rater.
func (r RatingClient) Reserve(ctx context.Context, c *Call, role Role) (int, error) {
	l := c.Leg(role)
	if l.Rate == nil {
		return 0, errors.New("reserve: the leg has no rate")
	}
	rt := l.Rate
	resp, err := r.C.Reserve(ctx, &ratingv1.ReserveRequest{
		AccountId: c.AccountID, CallId: c.ID, Leg: ChargeLeg(string(role), c.Attempt), MaxDurationS: int32(c.MaxDurationS),
		Rate: &ratingv1.AppliedRate{TariffId: rt.TariffID, Prefix: rt.Prefix, Destination: rt.Destination,
			RatePerMinuteMicros: rt.PerMinuteMicros, ConnectionFeeMicros: rt.ConnectionFeeMicros,
			MinSeconds: rt.MinSeconds, IncrementSeconds: rt.IncrementSeconds, Currency: rt.Currency},
	})
	if err != nil {
		return 0, err
	}
	return int(resp.GetGrantedS()), nil
}
