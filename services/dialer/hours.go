package dialer

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nyaruka/phonenumbers"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/rating/direction"
)

// hoursHorizon bounds the search for the next allowed instant: windows
// repeat every week, so if none is open in every zone within eight days
// (a week plus the widest spread of UTC offsets) none ever will be.
const hoursHorizon = 8

// NextAllowed reports whether t is inside the calling hours in every one of
// zones (IANA names; a number may be in several, such as a US area code
// that spans two, and must then be callable in all of them). If it is not,
// next is the earliest later instant that is, or the zero time when there
// is none (no window, or zones whose windows never overlap). No zones, or
// none Go knows, means UTC; nil hours mean DefaultCallingHours.
//
// Windows are wall-clock times in each zone, built with time.Date: on a
// spring-forward day a window edge inside the skipped hour lands where
// time.Date normalizes it, which depends on the zone's transition (02:30 is
// 03:30 CEST in Europe/Madrid but 01:30 EST in America/New_York); on a
// fall-back day an edge inside the repeated hour is whichever of its two
// instants time.Date picks, and a window around it lasts an hour longer.
func NextAllowed(zones []string, hours *dialerv1.CallingHours, t time.Time) (allowed bool, next time.Time) {
	if hours == nil || len(hours.GetWindows()) == 0 {
		hours = DefaultCallingHours()
	}
	ws := parseWindows(hours)
	if len(ws) == 0 {
		return false, time.Time{}
	}
	locs := locations(zones)
	if allowedAt(locs, ws, t) {
		return true, t
	}
	// The earliest allowed instant after t is one where the last zone to
	// open does: a window start in one of the zones. Try them in order.
	var starts []time.Time
	for _, loc := range locs {
		y, m, d := t.In(loc).Date()
		for i := -1; i <= hoursHorizon; i++ {
			wd := time.Date(y, m, d+i, 12, 0, 0, 0, loc).Weekday()
			for _, w := range ws {
				if !w.days[wd] {
					continue
				}
				if s := time.Date(y, m, d+i, w.startH, w.startM, 0, 0, loc); s.After(t) {
					starts = append(starts, s)
				}
			}
		}
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for _, s := range starts {
		if allowedAt(locs, ws, s) {
			return false, s
		}
	}
	return false, time.Time{}
}

// window is a CallingWindow parsed: its days and its wall-clock edges.
type window struct {
	days           [7]bool
	startH, startM int
	endH, endM     int // 24:00 is the next day's midnight (time.Date normalizes it)
}

// parseWindows keeps the well-formed windows (the API validates them; a
// malformed one here must not open the hours wider).
func parseWindows(h *dialerv1.CallingHours) []window {
	var ws []window
	for _, cw := range h.GetWindows() {
		sh, sm, ok1 := parseClock(cw.GetStart())
		eh, em, ok2 := parseClock(cw.GetEnd())
		if !ok1 || !ok2 || sh == 24 || eh*60+em <= sh*60+sm {
			continue
		}
		w := window{startH: sh, startM: sm, endH: eh, endM: em}
		for _, d := range cw.GetDays() {
			if d >= 0 && d <= 6 {
				w.days[d] = true
			}
		}
		ws = append(ws, w)
	}
	return ws
}

// parseClock reads "HH:MM", 00:00 to 24:00.
func parseClock(s string) (h, m int, ok bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, 0, false
	}
	return h, m, true
}

// allowedAt reports whether t is inside a window in every location.
func allowedAt(locs []*time.Location, ws []window, t time.Time) bool {
	for _, loc := range locs {
		if !inWindow(loc, ws, t) {
			return false
		}
	}
	return true
}

func inWindow(loc *time.Location, ws []window, t time.Time) bool {
	lt := t.In(loc)
	y, m, d := lt.Date()
	wd := lt.Weekday()
	for _, w := range ws {
		if !w.days[wd] {
			continue
		}
		start := time.Date(y, m, d, w.startH, w.startM, 0, 0, loc)
		end := time.Date(y, m, d, w.endH, w.endM, 0, 0, loc)
		if !t.Before(start) && t.Before(end) {
			return true
		}
	}
	return false
}

// zoneCache memoizes time.LoadLocation, which reads and parses the zone's
// tzdata on every call. Locations are immutable and the set of names is
// bounded by the tz database, so one cache serves the whole process.
var zoneCache sync.Map // name -> *time.Location

// zoneOf loads the IANA zone z through zoneCache; nil for a name Go does not
// know, and for "" and "Local" (the host's zone is no zone of a number or a
// shift).
func zoneOf(z string) *time.Location {
	if z == "" || z == "Local" || len(z) > 64 {
		return nil
	}
	if v, ok := zoneCache.Load(z); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(z)
	if err != nil {
		return nil
	}
	zoneCache.Store(z, loc)
	return loc
}

// sameClock reports whether zones are known and all keep one clock, in
// winter and in summer (a country's several names for one zone, as +44's
// London and Jersey).
func sameClock(zones []string) bool {
	locs := make([]*time.Location, 0, len(zones))
	for _, z := range zones {
		if loc := zoneOf(z); loc != nil {
			locs = append(locs, loc)
		}
	}
	if len(locs) == 0 {
		return false
	}
	for _, month := range []time.Month{time.January, time.July} {
		at := time.Date(2026, month, 15, 12, 0, 0, 0, time.UTC)
		_, want := at.In(locs[0]).Zone()
		for _, loc := range locs[1:] {
			if _, off := at.In(loc).Zone(); off != want {
				return false
			}
		}
	}
	return true
}

// locations loads zones, skipping names Go does not know; none left is UTC.
func locations(zones []string) []*time.Location {
	locs := make([]*time.Location, 0, len(zones))
	for _, z := range zones {
		if loc := zoneOf(z); loc != nil {
			locs = append(locs, loc)
		}
	}
	if len(locs) == 0 {
		locs = append(locs, time.UTC)
	}
	return locs
}

// recipientZones are the time zones whose calling hours apply to an E.164
// number: the ones the numbering plan gives the number (its area code);
// failing that, those of its country calling code (every zone the code
// covers: being callable in all of them is the safe reading); failing that,
// those of the campaign's default country. None at all means UTC.
func recipientZones(dir *direction.Resolver, number, defaultCountry string) []string {
	if z := dir.Lookup(number).TimeZones; len(z) > 0 {
		return z
	}
	if n, err := phonenumbers.Parse(number, ""); err == nil {
		if z := callingCodeZones(int(n.GetCountryCode())); len(z) > 0 {
			return z
		}
	}
	if defaultCountry != "" {
		if z := callingCodeZones(phonenumbers.GetCountryCodeForRegion(defaultCountry)); len(z) > 0 {
			return z
		}
	}
	return nil
}

// callingCodeZones are the zones of a country calling code (nil if none).
func callingCodeZones(cc int) []string {
	if cc <= 0 {
		return nil
	}
	zs, err := phonenumbers.GetTimezonesForPrefix(strconv.Itoa(cc))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(zs))
	for _, z := range zs {
		if z != "" && z != phonenumbers.UNKNOWN_TIMEZONE {
			out = append(out, z)
		}
	}
	return out
}
