package origination

import (
	"errors"
	"testing"
)

func TestReasonForCause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cause string
		want  FailureReason
	}{
		// The simulator's Default scenario endings and what they map to.
		{"USER_BUSY", ReasonBusy},                      // ...486
		{"NO_ANSWER", ReasonNoAnswer},                  // ...408
		{"NORMAL_TEMPORARY_FAILURE", ReasonCongestion}, // ...503
		{"UNALLOCATED_NUMBER", ReasonNoRoute},          // ...404
		{"NO_USER_RESPONSE", ReasonUnavailable},        // ...480 Temporarily Unavailable
		{"CALL_REJECTED", ReasonRejected},              // ...600 (603 Decline)
		{"USER_NOT_REGISTERED", ReasonUnavailable},
		{"INVALID_GATEWAY", ReasonNoRoute},
		{"DESTINATION_OUT_OF_ORDER", ReasonCongestion}, // sps/max_sessions limits
		{"ORIGINATOR_CANCEL", ReasonCanceled},
		{"SOMETHING_NEW", ReasonInternal},
	}
	for _, tt := range tests {
		t.Run(tt.cause, func(t *testing.T) {
			if got := ReasonForCause(tt.cause); got != tt.want {
				t.Errorf("ReasonForCause(%s) = %s, want %s", tt.cause, got, tt.want)
			}
		})
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
