// Package logging builds the structured (slog, JSON) loggers every Ringback
// process writes, and gives the attribute names that tie a log line to a call:
// call_id, leg_uuid and account_id. Loggers are passed explicitly (there is no
// package-level logger); call-related code derives one with WithCall/WithLeg
// so that every line it writes can be found by call id.
package logging

import (
	"io"
	"log/slog"
)

// Attribute keys shared by every service, so one query finds a call across
// origination, rating, cdr and webhook logs.
const (
	KeyService   = "service"
	KeyCallID    = "call_id"
	KeyLegUUID   = "leg_uuid"
	KeyAccountID = "account_id"
	KeyError     = "error"
)

// New returns a JSON logger writing to w at level (a slog.Level, or a
// *slog.LevelVar to change the level at run time). If service is not empty,
// every line carries service=<service>: all services share one process under
// cmd/ringback, so the field tells their lines apart.
func New(w io.Writer, level slog.Leveler, service string) *slog.Logger {
	log := slog.New(NewHandler(w, level))
	if service != "" {
		log = log.With(KeyService, service)
	}
	return log
}

// NewHandler returns the JSON handler behind New, for callers that wrap it.
func NewHandler(w io.Writer, level slog.Leveler) slog.Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
}

// ParseLevel reads a level name as RINGBACK_LOG_LEVEL spells it: debug, info,
// warn or error (any case), or slog's offsets such as "info+2".
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// WithCall returns log with call_id attached.
func WithCall(log *slog.Logger, callID string) *slog.Logger {
	return log.With(KeyCallID, callID)
}

// WithLeg returns log with call_id and leg_uuid attached: a leg is never
// logged without its call.
func WithLeg(log *slog.Logger, callID, legUUID string) *slog.Logger {
	return log.With(KeyCallID, callID, KeyLegUUID, legUUID)
}

// WithAccount returns log with account_id attached.
func WithAccount(log *slog.Logger, accountID string) *slog.Logger {
	return log.With(KeyAccountID, accountID)
}

// CallID, LegUUID and AccountID are attributes for a single log line.
func CallID(id string) slog.Attr    { return slog.String(KeyCallID, id) }
func LegUUID(id string) slog.Attr   { return slog.String(KeyLegUUID, id) }
func AccountID(id string) slog.Attr { return slog.String(KeyAccountID, id) }

// Err is the attribute for an error; a nil error logs as null.
func Err(err error) slog.Attr {
	if err == nil {
		return slog.Any(KeyError, nil)
	}
	return slog.String(KeyError, err.Error())
}

// Secret is a string that never reaches a log line or a formatted string:
// passwords (ESL, database) and API keys are held as Secret so that logging
// a config struct cannot leak them. Use Reveal to get the value.
type Secret string

// Redacted is what a Secret prints as. An empty Secret prints as "" so that a
// log line still tells "not set" from "set".
const Redacted = "REDACTED"

// Reveal returns the secret value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// String implements fmt.Stringer, so %v and %s are redacted too.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer, so %#v is redacted too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalText keeps secrets out of JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
