// Package cdr is the call detail record service: a durable JetStream
// consumer turns every call's final event into one record in PostgreSQL
// (idempotent by call id, acknowledged only after commit), and gRPC
// services answer queries over them (CdrService: ranges with cursor paging,
// one call with its timeline, CSV export), comments (CommentService) and
// statistics (StatisticsService).
//
// Records are built from the final event alone (CALL_COMPLETED,
// CALL_FAILED, CALL_CANCELED): it carries the whole call, both legs with
// their times, causes, rates, Directions and costs, so one message makes one
// row and nothing has to be assembled across messages (which would need the
// earlier events held unacknowledged until the call ends, possibly hours).
// The timeline is derived from the same snapshot.
package cdr
