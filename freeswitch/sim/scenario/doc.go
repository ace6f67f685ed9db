// Package scenario decides how the far end of a simulated call behaves.
//
// The simulator plays the parties FreeSWITCH dials: PSTN numbers reached
// through a gateway and registered users (agents) reached as user/<ext>.
// For every call attempt it asks a [Picker] for an [Outcome]: answer after a
// ring time and talk for a talk time, busy, never answer, congestion,
// unallocated, unavailable, rejected, an answering machine, early media, DTMF
// after answer. All durations are simulated time; the simulator scales them.
//
// # Scenarios
//
// A [Scenario] is an ordered list of [Rule]s. Each rule has a Go regular
// expression (Rule.Match) that is matched against the number exactly as
// dialed (digits, possibly with a leading +). The expression is not anchored
// for you: "486$" means "ends in 486", "^\+44" means "starts with +44". The
// first matching rule decides; it holds one or more weighted outcome specs
// ([Weighted], [OutcomeSpec]) whose durations are distributions ([Dist]:
// fixed, uniform, truncated normal or lognormal). If no rule matches, the
// catch-all of the Default scenario applies (answer after 0.8-1.2 s, talk
// 4-6 s).
//
// Scenarios are written in YAML or JSON and read with [Parse]; see
// example.yaml in this directory for every feature, with comments.
//
// # Determinism
//
// A Picker is seeded (Scenario.Seed). The n-th call of [Picker.Pick] for a
// given number (n = 0, 1, 2, ... counting earlier Picks of that same number)
// always returns the same Outcome for the same scenario and seed, no matter
// how picks of other numbers interleave, even concurrently. [Picker.PickAt]
// returns the n-th outcome directly without counting. [Picker.User] works the
// same way per extension.
//
// # The Default scenario
//
// [Default] is what the simulator uses when no scenario file is given. Its
// rules, tried in this order on the dialed number (Seed 1):
//
//	Number ends in  Far end                                          Final SIP  FreeSWITCH hangup cause
//	--------------  -----------------------------------------------  ---------  ------------------------
//	486             busy; 180, then 486 after 0.1-0.3 s              486        USER_BUSY
//	408             no answer; 180 forever, the originate timeout    none       NO_ANSWER (set by
//	                ends the attempt                                            FreeSWITCH on timeout)
//	503             congestion; 180, then 503 after 0.1-0.3 s        503        NORMAL_TEMPORARY_FAILURE
//	404             unallocated; 180, then 404 after 0.1-0.3 s       404        UNALLOCATED_NUMBER
//	480             unavailable; 180, then 480 after 0.1-0.3 s       480        NO_USER_RESPONSE
//	600             rejected; 180, then 603 Decline after 0.1-0.3 s  603        CALL_REJECTED
//	0000            answers after 100 ms, stays up until we hang up  200        -
//	0002            answers after 100 ms, far end hangs up after 2 s 200        NORMAL_CLEARING (BYE)
//	0095            answers after 100 ms, stays up; presses 1,9 (RFC 2833), 5 (INFO) 200        -
//	                (RFC 2833, DTMF-Source RTP) 1 s after answer,
//	                400 ms between digits (1 at 1.0 s, 9 at 1.4 s,
//	                5 at 1.8 s)
//	0666            answering machine: answers after 0.8-1.2 s,      200        NORMAL_CLEARING (BYE)
//	                4 s greeting then a beep, hangs up 30 s after
//	                answer
//	0183            early media: 183 with SDP, answers 1 s later,    200        NORMAL_CLEARING (BYE)
//	                talks 4-6 s
//	anything else   answers after 0.8-1.2 s (uniform), talks 4-6 s   200        NORMAL_CLEARING (BYE)
//	                (uniform)
//
// Users (user/<ext> endpoints, the agents), per [DefaultUsers]:
//
//	Extension                   Result
//	--------------------------  ---------------------------------------------------------------
//	1000-1019                   registered: auto-answers after 200-400 ms (uniform), stays up;
//	                            USER_BUSY while that user already has a call
//	other 1xxx (1020-1999)      exists but not registered: USER_NOT_REGISTERED
//	anything else               not in the directory: SUBSCRIBER_ABSENT
//
// Failure kinds map to SIP statuses and FreeSWITCH hangup causes as FreeSWITCH
// itself does (mod_sofia's sip_cause_to_freeswitch); see [CauseForSIPStatus].
package scenario
