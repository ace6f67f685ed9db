package rating

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/apierr"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo rating returns.
const ErrorDomain = "rating.ringback.dev"

// Stable reasons of the refusals and errors rating returns.
const (
	ReasonDestinationNotSupported = "DESTINATION_NOT_SUPPORTED"
	ReasonInsufficientBalance     = "INSUFFICIENT_BALANCE"
	ReasonBlockedDestination      = "BLOCKED_DESTINATION"
	ReasonInvalidArgument         = "INVALID_ARGUMENT"
	ReasonInvalidNumber           = "INVALID_NUMBER"
	ReasonInvalidRates            = "INVALID_RATES"
	ReasonTariffNotFound          = "TARIFF_NOT_FOUND"
	ReasonTariffInUse             = "TARIFF_IN_USE"
	ReasonNameTaken               = "NAME_TAKEN"
	ReasonCurrencyMismatch        = "CURRENCY_MISMATCH"
	ReasonNotFound                = "NOT_FOUND"
	ReasonPermissionDenied        = "PERMISSION_DENIED"
	ReasonUnauthenticated         = "UNAUTHENTICATED"
)

// Error is an error a caller can cause, with its gRPC code and stable
// reason (see apierr).
type Error = apierr.Error

func newError(code codes.Code, reason, msg string) *Error {
	return apierr.New(ErrorDomain, code, reason, msg)
}

// Refusals and errors (match with errors.Is; messages vary).
var (
	ErrDestinationNotSupported = newError(codes.FailedPrecondition, ReasonDestinationNotSupported, "destination not supported")
	ErrInsufficientBalance     = newError(codes.FailedPrecondition, ReasonInsufficientBalance, "insufficient balance")
	ErrBlockedDestination      = newError(codes.FailedPrecondition, ReasonBlockedDestination, "destination blocked")
	ErrInvalid                 = newError(codes.InvalidArgument, ReasonInvalidArgument, "invalid argument")
	ErrInvalidNumber           = newError(codes.InvalidArgument, ReasonInvalidNumber, "invalid number")
	ErrTariffNotFound          = newError(codes.NotFound, ReasonTariffNotFound, "tariff not found")
	ErrTariffInUse             = newError(codes.FailedPrecondition, ReasonTariffInUse, "tariff in use")
	ErrNameTaken               = newError(codes.AlreadyExists, ReasonNameTaken, "a tariff with this name already exists")
	ErrCurrencyMismatch        = newError(codes.FailedPrecondition, ReasonCurrencyMismatch, "currency mismatch")
	ErrNotFound                = newError(codes.NotFound, ReasonNotFound, "not found")
	ErrPermission              = newError(codes.PermissionDenied, ReasonPermissionDenied, "permission denied")
	ErrUnauthenticated         = newError(codes.Unauthenticated, ReasonUnauthenticated, "no account or operator in the request")
)

func errorf(base *Error, format string, args ...any) error {
	return base.WithMsg(fmt.Sprintf(format, args...))
}

// grpcError passes errors that carry a status and hides the others.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return newError(e.Code, e.Reason, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, "internal error")
}
