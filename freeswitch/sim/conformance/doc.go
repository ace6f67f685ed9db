// Package conformance is the wire-level conformance suite of the FreeSWITCH
// simulator.
//
// The suite proves that code which works against the simulator works unchanged
// against FreeSWITCH 1.10: it talks to the event socket through its own raw ESL
// client (see esl_client_test.go; deliberately not eslgo and nothing from the
// simulator's packages, so a bug cannot be mirrored on both sides) and asserts
// replies, framing, event order, key headers and hangup causes as recorded from
// a real FreeSWITCH 1.10.12 (the captures under /work/shared/freeswitch; the
// few byte-exact fixtures the tests need are copied into testdata/).
//
// Run against the simulator (each test starts its own simulator in-process,
// TimeScale 10):
//
//	go test -race ./conformance/
//
// Run against a real FreeSWITCH (its gateway "carrier" must point at a far end
// that behaves like the simulator's default scenario, keyed on the dialed
// number's ending: 486 busy, 408 never answers, 503 congestion, 0000 answers
// and stays up, 0002 answers and hangs up after 2 s, 0095 answers and sends
// DTMF 1,9,5):
//
//	FREESWITCH_ESL_ADDR=10.0.0.5:8021 FREESWITCH_ESL_PASSWORD=ClueCon go test ./conformance/
//
// In real mode the tests that change or depend on global switch state (fsctl,
// hupall, show channels) run serially before the parallel ones and restore what
// they change.
//
// Expectations come from the captures unless a comment says otherwise; where
// the captures are silent the comment cites the FreeSWITCH source file and
// function the expectation was read from.
package conformance
