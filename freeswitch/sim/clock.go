package sim

import "time"

// Clock is the simulator's notion of time. With a time scale above 1, simulated
// time runs faster than the wall clock, so a day of campaign runs in minutes:
// ring times, talk times, originate timeouts, playback lengths, scheduled
// hangups and event timestamps are all in simulated time, which keeps
// durations such as billsec consistent with the scenario.
type Clock struct {
	scale float64
	base  time.Time // simulated time at start
	start time.Time // wall time at start (monotonic)
}

// NewClock returns a clock running scale simulated seconds per real second.
func NewClock(scale float64) *Clock {
	if scale <= 0 {
		scale = 1
	}
	now := time.Now()
	return &Clock{scale: scale, base: now, start: now}
}

// Now is the current simulated time.
func (c *Clock) Now() time.Time {
	elapsed := time.Since(c.start)
	if c.scale == 1 {
		return c.base.Add(elapsed)
	}
	return c.base.Add(time.Duration(float64(elapsed) * c.scale))
}

// Real converts a simulated duration to the wall-clock duration it takes.
func (c *Clock) Real(d time.Duration) time.Duration {
	if c.scale == 1 {
		return d
	}
	return time.Duration(float64(d) / c.scale)
}

// AfterFunc runs f after simulated duration d.
func (c *Clock) AfterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(c.Real(d), f)
}

// Sleep waits for simulated duration d or until done is closed; it reports
// whether the full duration elapsed.
func (c *Clock) Sleep(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(c.Real(d))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
