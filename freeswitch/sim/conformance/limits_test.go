package conformance

import (
	"fmt"
	"strconv"
	"testing"
)

// Capture 28: `fsctl max_sessions 3` answers "+OK max sessions: 3" and then
// exactly 3 sessions can exist; beyond: -ERR DESTINATION_OUT_OF_ORDER. The
// previous limit is restored. (Global state: serial in real mode.)
func TestFsctlMaxSessionsLimit(t *testing.T) {
	tg := newGlobalTarget(t)
	c := tg.Login()
	orig := statusValue(t, c.API("status"), `\n(\d+) session\(s\) max\n`)
	t.Cleanup(func() {
		wantBody(t, "restore max_sessions", c.API("fsctl max_sessions "+strconv.Itoa(orig)), fmt.Sprintf("+OK max sessions: %d\n", orig))
		c.API("hupall NORMAL_CLEARING")
	})
	wantBody(t, "fsctl max_sessions 3", c.API("fsctl max_sessions 3"), "+OK max sessions: 3\n")
	if got := statusValue(t, c.API("status"), `\n(\d+) session\(s\) max\n`); got != 3 {
		t.Errorf("api status after fsctl max_sessions 3: %d session(s) max", got)
	}
	subscribe(t, c, "event json BACKGROUND_JOB")
	var jobs []string
	for i := 0; i < 5; i++ {
		jobs = append(jobs, c.BgAPI("originate null/1234 &park", newUUID()))
	}
	ok, refused := 0, 0
	for _, j := range jobs {
		e := c.WaitEvent("BACKGROUND_JOB "+j, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == j })
		switch {
		case e.Body == "-ERR DESTINATION_OUT_OF_ORDER\n":
			refused++
		case len(e.Body) == 41 && e.Body[:4] == "+OK ":
			ok++
		default:
			t.Errorf("BACKGROUND_JOB body %q, want +OK <uuid> or -ERR DESTINATION_OUT_OF_ORDER", e.Body)
		}
	}
	if ok != 3 || refused != 2 {
		t.Errorf("with max_sessions 3: %d originates succeeded and %d were refused, want 3 and 2 (capture 28)", ok, refused)
	}
	wantBody(t, "show channels count", c.API("show channels count"), "\n3 total.\n")
	wantBody(t, "api originate beyond the limit", c.API("originate null/1234 &park"), "-ERR DESTINATION_OUT_OF_ORDER\n")
	wantBody(t, "hupall", c.API("hupall NORMAL_CLEARING"), "+OK hangup all channels with cause NORMAL_CLEARING\n")
}

// Capture 28: `fsctl sps 2` answers "+OK sessions per second: 2"; a burst then
// hits the throttle (-ERR DESTINATION_OUT_OF_ORDER). The previous value is
// restored. (Global state: serial in real mode.)
func TestFsctlSessionsPerSecondThrottle(t *testing.T) {
	tg := newGlobalTarget(t)
	c := tg.Login()
	orig := statusValue(t, c.API("status"), `session\(s\) per Sec out of max (\d+),`)
	t.Cleanup(func() {
		wantBody(t, "restore sps", c.API("fsctl sps "+strconv.Itoa(orig)), fmt.Sprintf("+OK sessions per second: %d\n", orig))
		c.API("hupall NORMAL_CLEARING")
	})
	wantBody(t, "fsctl sps 2", c.API("fsctl sps 2"), "+OK sessions per second: 2\n")
	// The new rate takes effect at the next 1-second tick (README).
	tg.SimSleep(1500e6)
	if got := statusValue(t, c.API("status"), `session\(s\) per Sec out of max (\d+),`); got != 2 {
		t.Errorf("api status after fsctl sps 2: out of max %d", got)
	}
	subscribe(t, c, "event json BACKGROUND_JOB")
	var jobs []string
	for i := 0; i < 10; i++ {
		jobs = append(jobs, c.BgAPI("originate null/1234 &park", newUUID()))
	}
	refused := 0
	for _, j := range jobs {
		e := c.WaitEvent("BACKGROUND_JOB "+j, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == j })
		switch {
		case e.Body == "-ERR DESTINATION_OUT_OF_ORDER\n":
			refused++
		case len(e.Body) == 41 && e.Body[:4] == "+OK ":
		default:
			t.Errorf("BACKGROUND_JOB body %q, want +OK <uuid> or -ERR DESTINATION_OUT_OF_ORDER", e.Body)
		}
	}
	if refused == 0 {
		t.Errorf("a burst of 10 originates with sps 2: none was refused (capture 28: 12 of 13 refused)")
	}
}
