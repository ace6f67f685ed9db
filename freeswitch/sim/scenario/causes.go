package scenario

// causeNames is FreeSWITCH's CAUSE_CHART (src/switch_channel.c): every hangup
// cause name FreeSWITCH reports in Hangup-Cause.
var causeNames = map[string]struct{}{
	"NONE": {}, "UNALLOCATED_NUMBER": {}, "NO_ROUTE_TRANSIT_NET": {}, "NO_ROUTE_DESTINATION": {},
	"CHANNEL_UNACCEPTABLE": {}, "CALL_AWARDED_DELIVERED": {}, "NORMAL_CLEARING": {}, "USER_BUSY": {},
	"NO_USER_RESPONSE": {}, "NO_ANSWER": {}, "SUBSCRIBER_ABSENT": {}, "CALL_REJECTED": {},
	"NUMBER_CHANGED": {}, "REDIRECTION_TO_NEW_DESTINATION": {}, "EXCHANGE_ROUTING_ERROR": {},
	"DESTINATION_OUT_OF_ORDER": {}, "INVALID_NUMBER_FORMAT": {}, "FACILITY_REJECTED": {},
	"RESPONSE_TO_STATUS_ENQUIRY": {}, "NORMAL_UNSPECIFIED": {}, "NORMAL_CIRCUIT_CONGESTION": {},
	"NETWORK_OUT_OF_ORDER": {}, "NORMAL_TEMPORARY_FAILURE": {}, "SWITCH_CONGESTION": {},
	"ACCESS_INFO_DISCARDED": {}, "REQUESTED_CHAN_UNAVAIL": {}, "PRE_EMPTED": {},
	"FACILITY_NOT_SUBSCRIBED": {}, "OUTGOING_CALL_BARRED": {}, "INCOMING_CALL_BARRED": {},
	"BEARERCAPABILITY_NOTAUTH": {}, "BEARERCAPABILITY_NOTAVAIL": {}, "SERVICE_UNAVAILABLE": {},
	"BEARERCAPABILITY_NOTIMPL": {}, "CHAN_NOT_IMPLEMENTED": {}, "FACILITY_NOT_IMPLEMENTED": {},
	"SERVICE_NOT_IMPLEMENTED": {}, "INVALID_CALL_REFERENCE": {}, "INCOMPATIBLE_DESTINATION": {},
	"INVALID_MSG_UNSPECIFIED": {}, "MANDATORY_IE_MISSING": {}, "MESSAGE_TYPE_NONEXIST": {},
	"WRONG_MESSAGE": {}, "IE_NONEXIST": {}, "INVALID_IE_CONTENTS": {}, "WRONG_CALL_STATE": {},
	"RECOVERY_ON_TIMER_EXPIRE": {}, "MANDATORY_IE_LENGTH_ERROR": {}, "PROTOCOL_ERROR": {},
	"INTERWORKING": {}, "SUCCESS": {}, "ORIGINATOR_CANCEL": {}, "CRASH": {}, "SYSTEM_SHUTDOWN": {},
	"LOSE_RACE": {}, "MANAGER_REQUEST": {}, "BLIND_TRANSFER": {}, "ATTENDED_TRANSFER": {},
	"ALLOTTED_TIMEOUT": {}, "USER_CHALLENGE": {}, "MEDIA_TIMEOUT": {}, "PICKED_OFF": {},
	"USER_NOT_REGISTERED": {}, "PROGRESS_TIMEOUT": {}, "INVALID_GATEWAY": {}, "GATEWAY_DOWN": {},
	"INVALID_URL": {}, "INVALID_PROFILE": {}, "NO_PICKUP": {}, "SRTP_READ_ERROR": {}, "BOWOUT": {},
	"BUSY_EVERYWHERE": {}, "DECLINE": {}, "DOES_NOT_EXIST_ANYWHERE": {}, "NOT_ACCEPTABLE": {},
	"UNWANTED": {}, "NO_IDENTITY": {}, "BAD_IDENTITY_INFO": {}, "UNSUPPORTED_CERTIFICATE": {},
	"INVALID_IDENTITY": {}, "STALE_DATE": {}, "REJECT_ALL": {},
}

// ValidCause reports whether name is a FreeSWITCH hangup cause name, such as
// "USER_BUSY" (exact, upper case).
func ValidCause(name string) bool {
	_, ok := causeNames[name]
	return ok
}

// CauseForSIPStatus returns the hangup cause FreeSWITCH (mod_sofia,
// sofia_glue_sip_cause_to_freeswitch) reports when an outbound leg receives
// the given final SIP status, e.g. 486 -> "USER_BUSY", 603 -> "CALL_REJECTED",
// 600 -> "USER_BUSY". Statuses FreeSWITCH does not map give
// "NORMAL_UNSPECIFIED".
func CauseForSIPStatus(status int) string {
	switch status {
	case 200:
		return "NORMAL_CLEARING"
	case 401, 402, 403, 407, 603, 608:
		return "CALL_REJECTED"
	case 607:
		return "UNWANTED"
	case 404:
		return "UNALLOCATED_NUMBER"
	case 485, 604:
		return "NO_ROUTE_DESTINATION"
	case 408, 504:
		return "RECOVERY_ON_TIMER_EXPIRE"
	case 410:
		return "NUMBER_CHANGED"
	case 413, 414, 416, 420, 421, 423, 505, 513:
		return "INTERWORKING"
	case 480:
		return "NO_USER_RESPONSE"
	case 400, 481, 500, 503:
		return "NORMAL_TEMPORARY_FAILURE"
	case 486, 600:
		return "USER_BUSY"
	case 484:
		return "INVALID_NUMBER_FORMAT"
	case 488, 606:
		return "INCOMPATIBLE_DESTINATION"
	case 502:
		return "NETWORK_OUT_OF_ORDER"
	case 405:
		return "SERVICE_UNAVAILABLE"
	case 406, 415, 501:
		return "SERVICE_NOT_IMPLEMENTED"
	case 482, 483:
		return "EXCHANGE_ROUTING_ERROR"
	case 487:
		return "ORIGINATOR_CANCEL"
	case 428:
		return "NO_IDENTITY"
	case 429:
		return "BAD_IDENTITY_INFO"
	case 437:
		return "UNSUPPORTED_CERTIFICATE"
	case 438:
		return "INVALID_IDENTITY"
	default:
		return "NORMAL_UNSPECIFIED"
	}
}
