package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/apierr"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo the gateway returns.
const ErrorDomain = "gateway.ringback.dev"

// Reasons: the stable, machine-readable codes of the errors the gateway
// itself returns (backends add their own, e.g. ENDPOINT_BUSY, CALL_NOT_FOUND).
const (
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonPermissionDenied = "PERMISSION_DENIED"
	ReasonIPNotAllowed     = "IP_NOT_ALLOWED"
	ReasonAccountSuspended = "ACCOUNT_SUSPENDED"
	ReasonAccountNotFound  = "ACCOUNT_NOT_FOUND"
	ReasonAPIKeyNotFound   = "API_KEY_NOT_FOUND"
	ReasonNameTaken        = "NAME_TAKEN"
	ReasonKeyTaken         = "API_KEY_TAKEN"
	ReasonTooManyAPIKeys   = "TOO_MANY_API_KEYS"
	ReasonNotFound         = "NOT_FOUND"
	ReasonMethodNotAllowed = "METHOD_NOT_ALLOWED"
	ReasonRequestTooLarge  = "REQUEST_TOO_LARGE"
	ReasonInternal         = "INTERNAL"
	ReasonUnavailable      = "UNAVAILABLE"
)

// Error is an error a client can cause (or be told about), with its gRPC
// code and stable reason (see apierr).
type Error = apierr.Error

func newError(code codes.Code, reason, msg string) *Error {
	return apierr.New(ErrorDomain, code, reason, msg)
}

// Errors of the accounts store and service.
var (
	ErrAccountNotFound = newError(codes.NotFound, ReasonAccountNotFound, "account not found")
	ErrAPIKeyNotFound  = newError(codes.NotFound, ReasonAPIKeyNotFound, "API key not found")
	ErrNameTaken       = newError(codes.AlreadyExists, ReasonNameTaken, "an account with this name already exists")
	ErrKeyTaken        = newError(codes.AlreadyExists, ReasonKeyTaken, "this API key belongs to another account")
	ErrTooManyAPIKeys  = newError(codes.ResourceExhausted, ReasonTooManyAPIKeys, "too many active API keys: revoke some first")
	ErrUnauthenticated = newError(codes.Unauthenticated, ReasonUnauthenticated, "missing or invalid API key")
	ErrPermission      = newError(codes.PermissionDenied, ReasonPermissionDenied, "this key may not do that")
	ErrSuspended       = newError(codes.PermissionDenied, ReasonAccountSuspended, "the account is suspended")
	ErrInvalid         = newError(codes.InvalidArgument, ReasonInvalidArgument, "invalid argument")
)

func invalidf(format string, args ...any) error {
	return newError(codes.InvalidArgument, ReasonInvalidArgument, fmt.Sprintf(format, args...))
}

func errorf(base *Error, format string, args ...any) error {
	return base.WithMsg(fmt.Sprintf(format, args...))
}

// ErrorBody is the JSON every REST error is answered with.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	// Code is stable and machine-readable: google.rpc.ErrorInfo.reason when
	// the service gave one, else the gRPC code's name (NOT_FOUND, ...).
	Code    string `json:"code"`
	Message string `json:"message"`
	// HTTPStatus repeats the response's status for clients that lose it.
	HTTPStatus int `json:"http_status"`
}

// HTTPStatus maps a gRPC code to the HTTP status of its JSON error.
// FailedPrecondition is 409 Conflict rather than grpc-gateway's 400: in
// Ringback it always means "the resource is in the wrong state right now"
// (ENDPOINT_BUSY: the endpoint is in another call), which a client may
// retry later unchanged, unlike a 400.
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499 // client closed request (nginx's convention, grpc-gateway's too)
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}

// reasonStatus overrides the HTTP status of some reasons: rating's
// refusals are 422 Unprocessable Content (the request is well formed; the
// destination cannot be dialed), not the 409 of FAILED_PRECONDITION.
var reasonStatus = map[string]int{
	"DESTINATION_NOT_SUPPORTED": http.StatusUnprocessableEntity,
	"BLOCKED_DESTINATION":       http.StatusUnprocessableEntity,
	"INSUFFICIENT_BALANCE":      http.StatusUnprocessableEntity,
	"INVALID_RATES":             http.StatusUnprocessableEntity,
}

// codeNames are the fallback error codes when a status has no ErrorInfo.
var codeNames = map[codes.Code]string{
	codes.Canceled:           "CANCELED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// errorDetail turns any error into what the client sees. internal reports
// whether the original message was replaced (and should be logged): the
// text of an error without a reason may be a transport's ("dial tcp
// 10.0.3.7:50052: connection refused") or a panic's, which clients must not
// see.
func errorDetail(err error) (d ErrorDetail, internal bool) {
	st := status.Convert(err)
	d = ErrorDetail{Message: st.Message(), HTTPStatus: HTTPStatus(st.Code())}
	for _, det := range st.Details() {
		if info, ok := det.(*errdetails.ErrorInfo); ok && info.GetReason() != "" {
			d.Code = info.GetReason()
			break
		}
	}
	if s, ok := reasonStatus[d.Code]; ok {
		d.HTTPStatus = s
	}
	if d.Code == "" {
		d.Code = codeNames[st.Code()]
		if d.Code == "" {
			d.Code = ReasonInternal
		}
		switch st.Code() {
		case codes.Unknown, codes.Internal, codes.DataLoss:
			d.Message, internal = "internal error", true
		case codes.Unavailable:
			d.Message, internal = "service unavailable, try again later", true
		case codes.DeadlineExceeded:
			d.Message, internal = "the request took too long", true
		}
	}
	if d.Message == "" {
		d.Message = http.StatusText(d.HTTPStatus)
	}
	return d, internal
}

// writeError writes d as an ErrorBody.
func writeError(w http.ResponseWriter, d ErrorDetail) {
	h := w.Header()
	h.Del("Trailer")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if d.HTTPStatus == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="ringback"`)
	}
	w.WriteHeader(d.HTTPStatus)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: d})
}

// asError returns err's *Error, if any.
func asError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
