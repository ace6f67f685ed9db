package origination

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Adoption: the calls of an instance that is gone for good.
//
// A call belongs to the instance that created it: only its owner applies
// the switch's events to it. An instance that restarts under the same name
// (a StatefulSet's pod) takes its calls back at start (Recover). One that
// does not come back — scaled down, its node lost (a StatefulSet does not
// replace a pod on an unreachable node until the node is deleted), or cut
// off from Redis — stops heartbeating, and HeartbeatTTL later the other
// instances adopt its calls: the waiting ones when they are due (sweep),
// and every live one at once here, agents' sessions included. An adopted
// call is recovered as after a restart: its pending events are published,
// its legs checked on the switch, those gone ended, a wait for an agent or
// a menu resumed. A leg that hung up meanwhile ends with the cause and at
// the time the adopter heard (every node sends every event to every
// instance: hangups); the gap's other events (a digit, a join) are not
// replayed, the switch's state is what counts, as after a restart.
//
// Two writers cannot both drive a call: adoption is a compare-and-swap on
// the call's version, and an instance whose call was adopted while it
// could not reach Redis finds, at its next write, that the call changed
// and whose it now is (Engine.handle), and leaves it.

// adoptEvery is how often an instance looks for instances that are gone.
const adoptEvery = time.Second

// foreignFor is how long an instance whose calls are all on other nodes
// is not looked at again.
const foreignFor = time.Minute

// adopter looks for gone instances' live calls and adopts them.
func (e *Engine) adopter() {
	defer e.wg.Done()
	t := time.NewTicker(adoptEvery)
	defer t.Stop()
	foreign := map[string]time.Time{} // instance -> when to look again
	unrecovered := map[string]bool{}  // adopted calls whose recovery failed
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for id := range unrecovered {
			// Their legs may have ended unseen: nothing else would look.
			if err := e.recoverCall(ctx, id, false); err == nil || errors.Is(err, ErrNotFound) {
				delete(unrecovered, id)
			}
		}
		e.adoptGone(ctx, foreign, unrecovered)
		cancel()
	}
}

// adoptGone adopts the live calls of the instances that are gone, but for
// those in foreign (until their time); the calls it adopted but could not
// recover go in unrecovered, to be tried again.
func (e *Engine) adoptGone(ctx context.Context, foreign map[string]time.Time, unrecovered map[string]bool) {
	if e.leaving.Load() {
		return
	}
	gone, err := e.store.Gone(ctx)
	if err != nil {
		e.log.Warn("list instances that are gone", "err", err)
		return
	}
	now := time.Now()
	maps.DeleteFunc(foreign, func(_ string, until time.Time) bool { return !now.Before(until) })
	for _, from := range gone {
		if from == e.cfg.Instance {
			continue // its own heartbeat lapsed: its calls are still its own
		}
		if _, skip := foreign[from]; skip {
			continue
		}
		calls, err := e.store.Live(ctx, from)
		if err != nil {
			e.log.Warn("list a gone instance's calls", "instance", from, "err", err)
			continue
		}
		if !slices.ContainsFunc(calls, func(c *Call) bool { return e.sw.HasNode(c.Node) }) {
			foreign[from] = now.Add(foreignFor)
			continue
		}
		// In an order of its own, so that replicas adopting at once
		// mostly take different calls rather than race for the same.
		rand.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
		var (
			mu sync.Mutex
			n  int
		)
		forEach(calls, func(c *Call) {
			adopted, err := e.adoptLive(ctx, c.ID, from)
			mu.Lock()
			defer mu.Unlock()
			if adopted {
				n++
			}
			if err != nil {
				e.log.Error("recover an adopted call; trying again", "call_id", c.ID, "err", err)
				unrecovered[c.ID] = true
			}
		})
		if n > 0 {
			e.log.Info("adopted the live calls of an instance that is gone", "from", from, "calls", n, "left", len(calls)-n)
		}
	}
}

// adoptLive makes this instance drive a call of from, and recovers it.
// adopted false: the call was not from's any more (adopted by another
// instance, taken back by from, or ended). err: adopted, but its recovery
// failed.
func (e *Engine) adoptLive(ctx context.Context, id, from string) (adopted bool, err error) {
	select {
	case <-e.stop:
		return false, nil
	default:
	}
	unlock := e.lock(id)
	c, err := e.store.Get(ctx, id)
	if err != nil || c.Owner != from || !e.adoptable(ctx, c) {
		unlock()
		return false, nil
	}
	err = e.store.Adopt(ctx, c, e.cfg.Instance)
	unlock()
	if err != nil {
		return false, nil
	}
	e.live.Delete(id)
	return true, e.recoverCall(ctx, id, false)
}

// Leave stops this instance adopting calls: it is shutting down (the
// drain), and what it adopted would only have to be adopted again.
func (e *Engine) Leave() { e.leaving.Store(true) }

// adoptable says whether this instance may adopt c: it is not leaving, the
// call's owner is another instance, gone (not back under the same name),
// and the call is on one of this instance's FreeSWITCH nodes (a call of
// another deployment sharing the Redis, or on a node since removed, is not
// for it to drive).
func (e *Engine) adoptable(ctx context.Context, c *Call) bool {
	if e.leaving.Load() || c.Owner == e.cfg.Instance || !e.sw.HasNode(c.Node) {
		return false
	}
	alive, err := e.store.Alive(ctx, c.Owner)
	return err == nil && !alive
}

// hangupMemory is how long an instance remembers the hangups it saw of other
// instances' legs: past an owner's heartbeat TTL and the adopter's look.
const hangupMemory = time.Minute

// maxHangups bounds the hangups remembered (some 100 bytes each).
const maxHangups = 1 << 18

// hangups remembers the hangups of other instances' legs, seen lately: every
// node sends every event to every instance, so when a call is adopted its
// adopter has heard how and when its legs ended while nobody drove it, and
// ends them so (the cause, the SIP status, the time its billing stops)
// instead of as found gone.
type hangups struct {
	mu    sync.Mutex
	byLeg map[string]heardHangup
	order []heardHangup // oldest first, for forgetting
}

type heardHangup struct {
	ev    SwitchEvent
	heard time.Time // by this instance's clock (ev.At is the switch's)
}

// add remembers a CHANNEL_HANGUP_COMPLETE of another instance's leg, heard
// at now.
func (h *hangups) add(ev SwitchEvent, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byLeg == nil {
		h.byLeg = map[string]heardHangup{}
	}
	n := 0
	for n < len(h.order) && (len(h.order)-n >= maxHangups || now.Sub(h.order[n].heard) > hangupMemory) {
		if old := h.order[n]; h.byLeg[old.ev.UUID].heard.Equal(old.heard) {
			delete(h.byLeg, old.ev.UUID)
		}
		n++
	}
	hh := heardHangup{ev: ev, heard: now}
	h.order = append(h.order[n:], hh)
	h.byLeg[ev.UUID] = hh
}

// get returns the hangup seen of leg uuid, if any.
func (h *hangups) get(uuid string) (SwitchEvent, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hh, ok := h.byLeg[uuid]
	return hh.ev, ok
}
