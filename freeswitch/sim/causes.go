package sim

// causes lists FreeSWITCH's hangup causes (switch_types.h) with their numeric
// values. Values up to 127 are Q.850 causes; the rest are FreeSWITCH's own and
// are reported as hangup_cause_q850 16, as switch_channel_get_cause_q850 does.
var causes = map[string]int{
	"NONE":                           0,
	"UNALLOCATED_NUMBER":             1,
	"NO_ROUTE_TRANSIT_NET":           2,
	"NO_ROUTE_DESTINATION":           3,
	"CHANNEL_UNACCEPTABLE":           6,
	"CALL_AWARDED_DELIVERED":         7,
	"NORMAL_CLEARING":                16,
	"USER_BUSY":                      17,
	"NO_USER_RESPONSE":               18,
	"NO_ANSWER":                      19,
	"SUBSCRIBER_ABSENT":              20,
	"CALL_REJECTED":                  21,
	"NUMBER_CHANGED":                 22,
	"REDIRECTION_TO_NEW_DESTINATION": 23,
	"EXCHANGE_ROUTING_ERROR":         25,
	"DESTINATION_OUT_OF_ORDER":       27,
	"INVALID_NUMBER_FORMAT":          28,
	"FACILITY_REJECTED":              29,
	"RESPONSE_TO_STATUS_ENQUIRY":     30,
	"NORMAL_UNSPECIFIED":             31,
	"NORMAL_CIRCUIT_CONGESTION":      34,
	"NETWORK_OUT_OF_ORDER":           38,
	"NORMAL_TEMPORARY_FAILURE":       41,
	"SWITCH_CONGESTION":              42,
	"ACCESS_INFO_DISCARDED":          43,
	"REQUESTED_CHAN_UNAVAIL":         44,
	"PRE_EMPTED":                     45,
	"FACILITY_NOT_SUBSCRIBED":        50,
	"OUTGOING_CALL_BARRED":           52,
	"INCOMING_CALL_BARRED":           54,
	"BEARERCAPABILITY_NOTAUTH":       57,
	"BEARERCAPABILITY_NOTAVAIL":      58,
	"SERVICE_UNAVAILABLE":            63,
	"BEARERCAPABILITY_NOTIMPL":       65,
	"CHAN_NOT_IMPLEMENTED":           66,
	"FACILITY_NOT_IMPLEMENTED":       69,
	"SERVICE_NOT_IMPLEMENTED":        79,
	"INVALID_CALL_REFERENCE":         81,
	"INCOMPATIBLE_DESTINATION":       88,
	"INVALID_MSG_UNSPECIFIED":        95,
	"MANDATORY_IE_MISSING":           96,
	"MESSAGE_TYPE_NONEXIST":          97,
	"WRONG_MESSAGE":                  98,
	"IE_NONEXIST":                    99,
	"INVALID_IE_CONTENTS":            100,
	"WRONG_CALL_STATE":               101,
	"RECOVERY_ON_TIMER_EXPIRE":       102,
	"MANDATORY_IE_LENGTH_ERROR":      103,
	"PROTOCOL_ERROR":                 111,
	"INTERWORKING":                   127,
	"SUCCESS":                        142,
	"ORIGINATOR_CANCEL":              487,
	"CRASH":                          500,
	"SYSTEM_SHUTDOWN":                501,
	"LOSE_RACE":                      502,
	"MANAGER_REQUEST":                503,
	"BLIND_TRANSFER":                 600,
	"ATTENDED_TRANSFER":              601,
	"ALLOTTED_TIMEOUT":               602,
	"USER_CHALLENGE":                 603,
	"MEDIA_TIMEOUT":                  604,
	"PICKED_OFF":                     605,
	"USER_NOT_REGISTERED":            606,
	"PROGRESS_TIMEOUT":               607,
	"INVALID_GATEWAY":                608,
	"GATEWAY_DOWN":                   609,
	"INVALID_URL":                    610,
	"INVALID_PROFILE":                611,
	"NO_PICKUP":                      612,
	"SRTP_READ_ERROR":                613,
	"BOWOUT":                         614,
	"BUSY_EVERYWHERE":                615,
	"DECLINE":                        616,
	"DOES_NOT_EXIST_ANYWHERE":        617,
	"NOT_ACCEPTABLE":                 618,
	"UNWANTED":                       619,
	"NO_IDENTITY":                    620,
	"BAD_IDENTITY_INFO":              621,
	"UNSUPPORTED_CERTIFICATE":        622,
	"INVALID_IDENTITY":               623,
	"STALE_DATE":                     624,
	"REJECT_ALL":                     625,
}

// validCause reports whether name is a cause FreeSWITCH knows; unknown names
// given to uuid_kill, hupall or error/ endpoints fall back to NORMAL_CLEARING.
func validCause(name string) bool {
	_, ok := causes[name]
	return ok
}

// causeOrDefault returns name when it is a known cause, else NORMAL_CLEARING,
// which is what switch_channel_str2cause yields for junk.
func causeOrDefault(name string) string {
	if validCause(name) {
		return name
	}
	return "NORMAL_CLEARING"
}

// q850 is the value FreeSWITCH puts in hangup_cause_q850.
func q850(name string) int {
	v := causes[name]
	if v > 127 {
		return 16
	}
	return v
}
