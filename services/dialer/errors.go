package dialer

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/apierr"
)

// ErrorDomain is the domain of the dialer's error reasons.
const ErrorDomain = "dialer.ringback.dev"

// AccountHeader is the metadata the gateway sets to the authenticated
// account's id.
const AccountHeader = "ringback-account-id"

// Error is the service's error: a gRPC code and a stable reason.
type Error = apierr.Error

func newError(code codes.Code, reason, msg string) *Error {
	return apierr.New(ErrorDomain, code, reason, msg)
}

// Errors with stable reasons.
var (
	ErrUnauthenticated     = newError(codes.Unauthenticated, "UNAUTHENTICATED", "no account in the request")
	ErrInvalidArgument     = newError(codes.InvalidArgument, "INVALID_ARGUMENT", "invalid argument")
	ErrInvalidPageToken    = newError(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "page_token is not one this API issued")
	ErrCampaignNotFound    = newError(codes.NotFound, "CAMPAIGN_NOT_FOUND", "campaign not found")
	ErrCampaignExists      = newError(codes.AlreadyExists, "CAMPAIGN_EXISTS", "the account has a campaign with that name")
	ErrCampaignNotEditable = newError(codes.FailedPrecondition, "CAMPAIGN_NOT_EDITABLE", "a campaign can be edited only while CREATED or FINISHED")
	ErrInvalidTransition   = newError(codes.FailedPrecondition, "INVALID_TRANSITION", "the campaign's status does not allow that")
	ErrNoRecords           = newError(codes.FailedPrecondition, "NO_RECORDS", "the campaign has no active list with records")
	ErrListNotFound        = newError(codes.NotFound, "LIST_NOT_FOUND", "list not found")
)

// accountFrom returns the account a request acts for.
func accountFrom(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(AccountHeader); len(v) == 1 && v[0] != "" {
		return v[0], nil
	}
	return "", ErrUnauthenticated
}

// grpcError passes the service's errors through and hides the others
// (logged) as INTERNAL.
func grpcError(log *slog.Logger, op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return newError(codes.DeadlineExceeded, "TIMEOUT", err.Error())
	}
	if log != nil {
		log.Error("dialer API internal error", "op", op, "err", err)
	}
	return newError(codes.Internal, "INTERNAL", "internal error")
}
