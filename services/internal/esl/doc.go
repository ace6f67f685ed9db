// Package esl is Ringback's client for the FreeSWITCH event socket (inbound
// mode). The origination service is its only user: it is the one component
// that talks to FreeSWITCH.
//
// A Client keeps one session per FreeSWITCH node alive: a connection that
// carries the event subscription and a few pipelined command connections.
// It reconnects with jittered backoff, re-subscribes, reports every
// (re)connection with the node's live channels so the caller can reconcile
// its calls (NodeUp), tells a FreeSWITCH restart (new Core-UUID) apart from
// a dropped connection, and budgets originates per node.
//
// The package speaks the wire protocol itself instead of wrapping
// github.com/percipia/eslgo v1.5.0, whose Conn matches replies to commands
// by arrival order across concurrent callers (and hands a timed-out
// command's reply to the next caller), dispatches each event on its own
// goroutine (so handlers see events out of order), cannot bound Dial when a
// peer never sends auth/request, stops reading without notice on any read
// error other than io.EOF, and races with itself on Close. eslgo_test.go
// demonstrates these against the simulator (it is built without -race,
// because of that last one). Nothing of the wire (or of eslgo) leaks out:
// callers see Event, NodeUp, NodeDown, Leg and errors.
package esl
