package webhook

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/ringback/ringback/services/internal/apierr"
)

// ErrorDomain is the domain of the webhook service's error reasons.
const ErrorDomain = "webhook.ringback.dev"

// AccountHeader is the metadata the gateway sets to the authenticated
// account's id on every request it forwards.
const AccountHeader = "ringback-account-id"

// Error is the service's error: a gRPC code and a stable reason.
type Error = apierr.Error

func newError(code codes.Code, reason, msg string) *Error {
	return apierr.New(ErrorDomain, code, reason, msg)
}

// Errors with stable reasons.
var (
	ErrUnauthenticated       = newError(codes.Unauthenticated, "UNAUTHENTICATED", "no account in the request")
	ErrInvalidArgument       = newError(codes.InvalidArgument, "INVALID_ARGUMENT", "invalid argument")
	ErrInvalidURL            = newError(codes.InvalidArgument, "INVALID_URL", "invalid webhook URL")
	ErrDestinationNotAllowed = newError(codes.InvalidArgument, "DESTINATION_NOT_ALLOWED", "webhook destination not allowed")
	ErrUnresolvableHost      = newError(codes.InvalidArgument, "UNRESOLVABLE_HOST", "webhook host does not resolve")
	ErrInvalidSecret         = newError(codes.InvalidArgument, "INVALID_SECRET", "invalid signing secret")
	ErrInvalidTimeZone       = newError(codes.InvalidArgument, "INVALID_TIME_ZONE", "unknown time zone")
	ErrInvalidEmail          = newError(codes.InvalidArgument, "INVALID_EMAIL", "invalid email address")
	ErrInvalidPageToken      = newError(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "invalid page token")
	ErrInvalidRange          = newError(codes.InvalidArgument, "INVALID_RANGE", "invalid time range")
	ErrWebhookNotFound       = newError(codes.NotFound, "WEBHOOK_NOT_FOUND", "no such webhook")
	ErrDeliveryNotFound      = newError(codes.NotFound, "DELIVERY_NOT_FOUND", "no such delivery")
	ErrTooManyWebhooks       = newError(codes.ResourceExhausted, "TOO_MANY_WEBHOOKS", "too many webhooks for this account")
)

// accountFrom returns the account a request acts for.
func accountFrom(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(AccountHeader); len(v) == 1 && v[0] != "" {
		return v[0], nil
	}
	return "", ErrUnauthenticated
}
