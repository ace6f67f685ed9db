// Package apierr is the error every Ringback service returns for what a
// caller can cause: a gRPC code, a stable machine-readable reason and the
// service's domain, carried across gRPC as a status with a
// google.rpc.ErrorInfo, which the gateway turns into the JSON error code.
package apierr

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is an error with its gRPC status. Wrapping it with
// fmt.Errorf("...: %w") keeps both.
type Error struct {
	Code   codes.Code
	Reason string // stable, e.g. DESTINATION_NOT_SUPPORTED
	Msg    string
	Domain string // the service's, e.g. rating.ringback.dev
}

// New returns an Error.
func New(domain string, code codes.Code, reason, msg string) *Error {
	return &Error{Code: code, Reason: reason, Msg: msg, Domain: domain}
}

func (e *Error) Error() string { return e.Msg }

// GRPCStatus implements the interface grpc's status package looks for.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Reason, Domain: e.Domain}); err == nil {
		st = d
	}
	return st
}

// Is makes errors.Is match on the reason: every "tariff not found" is the
// same error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// WithMsg returns a copy of e with another message.
func (e *Error) WithMsg(msg string) *Error {
	cp := *e
	cp.Msg = msg
	return &cp
}
