package esl

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps one of these
// or is a *CommandError, so callers branch with errors.Is / errors.As and
// never by matching text.
var (
	// ErrNotConnected means the node has no live session right now (it is
	// reconnecting). Nothing was sent; retrying later or on another node is
	// safe.
	ErrNotConnected = errors.New("esl: node not connected")
	// ErrUnknownNode means the node name is not one of Config.Addrs.
	ErrUnknownNode = errors.New("esl: unknown node")
	// ErrTimeout means a deadline passed: DialTimeout, CommandTimeout or the
	// caller's context deadline (then the error also wraps
	// context.DeadlineExceeded).
	ErrTimeout = errors.New("esl: timed out")
	// ErrConnectionLost means the session ended while a command or an
	// originate was in flight. The command may or may not have run on the
	// switch; for an originate the leg must be reconciled by its UUID (see
	// NodeUp.Channels).
	ErrConnectionLost = errors.New("esl: connection lost")
	// ErrAuth means FreeSWITCH refused the password.
	ErrAuth = errors.New("esl: authentication failed")
	// ErrClosed means Close was called.
	ErrClosed = errors.New("esl: client closed")
	// ErrRateLimited means the node's sessions-per-second budget had no
	// token before the caller's context ended. Nothing was sent.
	ErrRateLimited = errors.New("esl: sessions-per-second budget exhausted")
	// ErrInvalid means the request cannot be sent safely (a newline in a
	// command, a bad variable name, an unbalanced brace in a value, ...).
	// Nothing was sent.
	ErrInvalid = errors.New("esl: invalid request")
	// ErrProtocol means the peer broke the event-socket protocol (a reply
	// nobody asked for, a malformed frame). The connection is dropped and
	// re-established.
	ErrProtocol = errors.New("esl: protocol error")
)

// CommandError is a negative reply from FreeSWITCH: "-ERR USER_BUSY" from an
// originate, "-ERR No such channel!" from uuid_kill, "-USAGE: ..." and so on.
// It means the command reached the switch and was refused; the connection is
// fine.
type CommandError struct {
	// Command is the API command name ("originate", "uuid_kill"), without
	// its arguments, which may carry phone numbers.
	Command string
	// Reply is the switch's reply without the trailing newline.
	Reply string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s refused by FreeSWITCH: %s", e.Command, e.Reply)
}

// Cause is the machine-readable part of the reply: the hangup cause of a
// failed originate ("USER_BUSY", "NO_ANSWER", "DESTINATION_OUT_OF_ORDER"),
// "USAGE" for a usage error, otherwise the text after "-ERR ".
func (e *CommandError) Cause() string {
	r := strings.TrimSpace(e.Reply)
	switch {
	case strings.HasPrefix(r, "-ERR"):
		return strings.TrimSpace(r[len("-ERR"):])
	case strings.HasPrefix(r, "-USAGE"):
		return "USAGE"
	}
	return r
}

// isNegative reports whether an api body or Reply-Text is a refusal. Bodies
// such as uuid_getvar's value are returned verbatim, so only FreeSWITCH's
// error prefixes count.
func isNegative(s string) bool {
	return strings.HasPrefix(s, "-ERR") || strings.HasPrefix(s, "-USAGE")
}

// ctxErr turns a finished context into this package's error vocabulary: a
// passed deadline is ErrTimeout (and still context.DeadlineExceeded), a
// cancellation stays context.Canceled.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
