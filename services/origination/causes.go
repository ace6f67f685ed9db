package origination

// FailureReason says why a call failed, in the words the API uses.
type FailureReason string

// Failure reasons (the brief's list).
const (
	ReasonBusy          FailureReason = "BUSY"
	ReasonNoAnswer      FailureReason = "NO_ANSWER"
	ReasonCongestion    FailureReason = "CONGESTION"
	ReasonUnavailable   FailureReason = "UNAVAILABLE"
	ReasonNoRoute       FailureReason = "NO_ROUTE"
	ReasonRejected      FailureReason = "REJECTED"
	ReasonCanceled      FailureReason = "CANCELED"
	ReasonNotAuthorized FailureReason = "NOT_AUTHORIZED"
	ReasonInternal      FailureReason = "INTERNAL"
	// ReasonMachine: an answering machine answered (machine detection on).
	ReasonMachine FailureReason = "MACHINE"
	// ReasonNoAgent: the party pressed a menu's CONNECT option and no agent
	// was connected within its wait (a queue; failed leg: second).
	ReasonNoAgent FailureReason = "NO_AGENT"
	// ReasonQueueEmpty and ReasonQueueFull: the party pressed a menu's
	// CONNECT option and was turned away at once (Engine.TurnAway): no
	// agent was logged in to take it, or the queue was full.
	ReasonQueueEmpty FailureReason = "QUEUE_EMPTY"
	ReasonQueueFull  FailureReason = "QUEUE_FULL"
)

// ReasonForCause maps a FreeSWITCH hangup cause of a leg that never
// answered to the reason a customer understands. The table follows what
// carriers and FreeSWITCH's sofia map SIP responses to (486 -> USER_BUSY,
// 404 -> UNALLOCATED_NUMBER, 503 -> NORMAL_TEMPORARY_FAILURE, ...).
func ReasonForCause(cause string) FailureReason {
	switch cause {
	case "USER_BUSY", "BUSY_EVERYWHERE":
		return ReasonBusy
	case "NO_ANSWER", "ALLOTTED_TIMEOUT", "PROGRESS_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE":
		return ReasonNoAnswer
	case "NORMAL_TEMPORARY_FAILURE", "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION", "NETWORK_OUT_OF_ORDER",
		"DESTINATION_OUT_OF_ORDER", "REQUESTED_CHAN_UNAVAIL", "GATEWAY_DOWN", "MEDIA_TIMEOUT":
		return ReasonCongestion
	case "SUBSCRIBER_ABSENT", "USER_NOT_REGISTERED", "NO_USER_RESPONSE":
		return ReasonUnavailable
	case "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION", "NO_ROUTE_TRANSIT_NET", "INVALID_NUMBER_FORMAT",
		"INVALID_GATEWAY", "INVALID_PROFILE", "CHAN_NOT_IMPLEMENTED", "INVALID_URL", "NUMBER_CHANGED",
		"INCOMPATIBLE_DESTINATION", "FACILITY_NOT_IMPLEMENTED", "SERVICE_NOT_IMPLEMENTED":
		return ReasonNoRoute
	case "CALL_REJECTED", "DECLINE", "OUTGOING_CALL_BARRED", "FACILITY_REJECTED", "REJECT_ALL", "UNWANTED":
		return ReasonRejected
	case "ORIGINATOR_CANCEL", "LOSE_RACE", "MANAGER_REQUEST":
		return ReasonCanceled
	}
	return ReasonInternal
}
