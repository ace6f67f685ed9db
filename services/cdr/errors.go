package cdr

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/ringback/ringback/services/internal/apierr"
)

// ErrorDomain is the domain of cdr's error reasons.
const ErrorDomain = "cdr.ringback.dev"

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
	ErrUnauthenticated     = newError(codes.Unauthenticated, "UNAUTHENTICATED", "no account in the request")
	ErrCdrNotFound         = newError(codes.NotFound, "CDR_NOT_FOUND", "no record of that call")
	ErrInvalidArgument     = newError(codes.InvalidArgument, "INVALID_ARGUMENT", "invalid argument")
	ErrInvalidRange        = newError(codes.InvalidArgument, "INVALID_RANGE", "invalid time range")
	ErrInvalidPageToken    = newError(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "invalid page token")
	ErrCommentTypeNotFound = newError(codes.NotFound, "COMMENT_TYPE_NOT_FOUND", "no such comment type")
	ErrCommentNotFound     = newError(codes.NotFound, "COMMENT_NOT_FOUND", "no such comment")
	ErrCommentTypeExists   = newError(codes.AlreadyExists, "COMMENT_TYPE_EXISTS", "a comment type with that name exists")
	ErrCommentTypeInUse    = newError(codes.FailedPrecondition, "COMMENT_TYPE_IN_USE", "comments use this type")
	ErrInvalidComment      = newError(codes.InvalidArgument, "INVALID_COMMENT", "invalid comment")
	ErrInvalidTimeZone     = newError(codes.InvalidArgument, "INVALID_TIME_ZONE", "unknown time zone")
)

// accountFrom returns the account a request acts for.
func accountFrom(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(AccountHeader); len(v) == 1 && v[0] != "" {
		return v[0], nil
	}
	return "", ErrUnauthenticated
}
