package rating

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
// reason; it crosses gRPC as a status with a google.rpc.ErrorInfo.
type Error struct {
	Code   codes.Code
	Reason string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// GRPCStatus implements the interface grpc's status package looks for.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Reason, Domain: ErrorDomain}); err == nil {
		st = d
	}
	return st
}

// Is matches on the reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Refusals and errors (match with errors.Is; messages vary).
var (
	ErrDestinationNotSupported = &Error{codes.FailedPrecondition, ReasonDestinationNotSupported, "destination not supported"}
	ErrInsufficientBalance     = &Error{codes.FailedPrecondition, ReasonInsufficientBalance, "insufficient balance"}
	ErrBlockedDestination      = &Error{codes.FailedPrecondition, ReasonBlockedDestination, "destination blocked"}
	ErrInvalid                 = &Error{codes.InvalidArgument, ReasonInvalidArgument, "invalid argument"}
	ErrInvalidNumber           = &Error{codes.InvalidArgument, ReasonInvalidNumber, "invalid number"}
	ErrTariffNotFound          = &Error{codes.NotFound, ReasonTariffNotFound, "tariff not found"}
	ErrTariffInUse             = &Error{codes.FailedPrecondition, ReasonTariffInUse, "tariff in use"}
	ErrNameTaken               = &Error{codes.AlreadyExists, ReasonNameTaken, "a tariff with this name already exists"}
	ErrCurrencyMismatch        = &Error{codes.FailedPrecondition, ReasonCurrencyMismatch, "currency mismatch"}
	ErrNotFound                = &Error{codes.NotFound, ReasonNotFound, "not found"}
	ErrPermission              = &Error{codes.PermissionDenied, ReasonPermissionDenied, "permission denied"}
	ErrUnauthenticated         = &Error{codes.Unauthenticated, ReasonUnauthenticated, "no account or operator in the request"}
)

func errorf(base *Error, format string, args ...any) error {
	return &Error{base.Code, base.Reason, fmt.Sprintf(format, args...)}
}

// grpcError passes errors that carry a status and hides the others.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return &Error{e.Code, e.Reason, err.Error()}
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, "internal error")
}
