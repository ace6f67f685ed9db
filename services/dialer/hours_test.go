package dialer

import (
	"slices"
	"testing"
	"time"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/rating/direction"
)

var (
	hoursEveryDay = []int32{0, 1, 2, 3, 4, 5, 6}
	hoursWeekdays = []int32{1, 2, 3, 4, 5}
)

func chours(ws ...*dialerv1.CallingWindow) *dialerv1.CallingHours {
	return &dialerv1.CallingHours{Windows: ws}
}

func cwin(days []int32, start, end string) *dialerv1.CallingWindow {
	return &dialerv1.CallingWindow{Days: days, Start: start, End: end}
}

func mustUTC(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestHoursNextAllowed(t *testing.T) {
	t.Parallel()
	office := chours(cwin(hoursWeekdays, "09:00", "18:00"))
	tests := []struct {
		name    string
		zones   []string
		hours   *dialerv1.CallingHours
		at      string
		allowed bool
		next    string // when not allowed; "" for never
	}{
		// Brazil has had no DST since 2019: São Paulo is UTC-3 all year.
		{"Sao Paulo before opening", []string{"America/Sao_Paulo"}, office, "2026-03-04T11:00:00Z", false, "2026-03-04T12:00:00Z"},
		{"Sao Paulo open", []string{"America/Sao_Paulo"}, office, "2026-03-04T12:00:00Z", true, ""},
		{"Sao Paulo at closing", []string{"America/Sao_Paulo"}, office, "2026-03-04T21:00:00Z", false, "2026-03-05T12:00:00Z"},
		{"Manaus is an hour behind", []string{"America/Manaus"}, office, "2026-03-04T12:30:00Z", false, "2026-03-04T13:00:00Z"},
		// Weekends: Friday evening waits for Monday morning.
		{"Madrid Friday evening", []string{"Europe/Madrid"}, office, "2026-03-06T17:30:00Z", false, "2026-03-09T08:00:00Z"},
		{"Madrid Saturday", []string{"Europe/Madrid"}, office, "2026-03-07T10:00:00Z", false, "2026-03-09T08:00:00Z"},
		{"Madrid Sunday 23:30 local", []string{"Europe/Madrid"}, office, "2026-03-08T22:30:00Z", false, "2026-03-09T08:00:00Z"},
		{"Madrid weekend window", []string{"Europe/Madrid"}, chours(cwin(hoursWeekdays, "09:00", "18:00"), cwin([]int32{6}, "10:00", "14:00")),
			"2026-03-07T08:00:00Z", false, "2026-03-07T09:00:00Z"},
		{"Madrid lunch break", []string{"Europe/Madrid"}, chours(cwin(hoursWeekdays, "09:00", "14:00"), cwin(hoursWeekdays, "16:00", "19:00")),
			"2026-03-04T13:30:00Z", false, "2026-03-04T15:00:00Z"},
		{"Canaries an hour behind Madrid", []string{"Atlantic/Canary", "Europe/Madrid"}, office, "2026-03-04T08:30:00Z", false, "2026-03-04T09:00:00Z"},
		// A US area code over two zones (+1 208: Boise and Los Angeles):
		// open once Los Angeles opens, closed once Boise closes.
		{"US two zones, LA not open", []string{"America/Boise", "America/Los_Angeles"}, DefaultCallingHours(), "2026-03-04T15:30:00Z", false, "2026-03-04T16:00:00Z"},
		{"US two zones, both open", []string{"America/Boise", "America/Los_Angeles"}, DefaultCallingHours(), "2026-03-05T03:30:00Z", true, ""},
		{"US two zones, Boise closed", []string{"America/Boise", "America/Los_Angeles"}, DefaultCallingHours(), "2026-03-05T04:00:00Z", false, "2026-03-05T16:00:00Z"},
		// Australia: Adelaide is on daylight time (+10:30) until 5 April
		// 2026, Perth (+8) has none; +61 8 covers both.
		{"Adelaide and Perth", []string{"Australia/Adelaide", "Australia/Perth"}, office, "2026-03-04T00:00:00Z", false, "2026-03-04T01:00:00Z"},
		{"Adelaide closes first", []string{"Australia/Adelaide", "Australia/Perth"}, office, "2026-03-04T07:30:00Z", false, "2026-03-05T01:00:00Z"},
		{"Sydney after its DST ended", []string{"Australia/Sydney"}, office, "2026-04-06T22:00:00Z", false, "2026-04-06T23:00:00Z"},
		{"Sydney before its DST ended", []string{"Australia/Sydney"}, office, "2026-04-01T21:30:00Z", false, "2026-04-01T22:00:00Z"},
		// Europe/Madrid springs forward on 2026-03-29 at 02:00 CET to
		// 03:00 CEST: 09:00 that day is 07:00 UTC, not 08:00.
		{"Madrid spring forward morning", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "09:00", "21:00")), "2026-03-29T06:30:00Z", false, "2026-03-29T07:00:00Z"},
		{"Madrid spring forward evening", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "09:00", "21:00")), "2026-03-29T19:00:00Z", false, "2026-03-30T07:00:00Z"},
		// A start in the skipped hour: time.Date makes 02:30 03:30 CEST.
		{"Madrid start in the skipped hour", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "02:30", "05:00")), "2026-03-29T00:30:00Z", false, "2026-03-29T01:30:00Z"},
		// Falls back on 2026-10-25 at 03:00 CEST to 02:00 CET: 09:00 is
		// 08:00 UTC that day, and 01:00-04:00 lasts four hours.
		{"Madrid fall back morning", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "09:00", "21:00")), "2026-10-25T07:30:00Z", false, "2026-10-25T08:00:00Z"},
		{"Madrid fall back, first 02:30", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "01:00", "04:00")), "2026-10-25T00:30:00Z", true, ""},
		{"Madrid fall back, second 02:30", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "01:00", "04:00")), "2026-10-25T01:30:00Z", true, ""},
		{"Madrid fall back, 03:59 CET", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "01:00", "04:00")), "2026-10-25T02:59:00Z", true, ""},
		{"Madrid fall back, 04:00 CET", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "01:00", "04:00")), "2026-10-25T03:00:00Z", false, "2026-10-26T00:00:00Z"},
		// America/New_York springs forward on 2026-03-08 at 02:00 EST to
		// 03:00 EDT: 08:00 that day is 12:00 UTC; a 02:30 start is where
		// time.Date puts it there, 01:30 EST.
		{"New York spring forward morning", []string{"America/New_York"}, DefaultCallingHours(), "2026-03-08T11:30:00Z", false, "2026-03-08T12:00:00Z"},
		{"New York spring forward, 08:00 EDT", []string{"America/New_York"}, DefaultCallingHours(), "2026-03-08T12:00:00Z", true, ""},
		{"New York the day before", []string{"America/New_York"}, DefaultCallingHours(), "2026-03-07T12:30:00Z", false, "2026-03-07T13:00:00Z"},
		{"New York start in the skipped hour", []string{"America/New_York"}, chours(cwin(hoursEveryDay, "02:30", "04:00")), "2026-03-08T06:00:00Z", false, "2026-03-08T06:30:00Z"},
		// Ends at midnight.
		{"until 24:00, a minute before", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "20:00", "24:00")), "2026-03-04T22:59:00Z", true, ""},
		{"until 24:00, at midnight", []string{"Europe/Madrid"}, chours(cwin(hoursEveryDay, "20:00", "24:00")), "2026-03-04T23:00:00Z", false, "2026-03-05T19:00:00Z"},
		{"all day", []string{"America/New_York", "Asia/Tokyo"}, chours(cwin(hoursEveryDay, "00:00", "24:00")), "2026-03-08T07:30:00Z", true, ""},
		// Zones whose windows never overlap: no next.
		{"never", []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"}, chours(cwin(hoursEveryDay, "09:00", "10:00")), "2026-03-04T00:00:00Z", false, ""},
		{"no day", []string{"Europe/Madrid"}, chours(cwin(nil, "09:00", "10:00")), "2026-03-04T00:00:00Z", false, ""},
		// No zone, or none Go knows: UTC. No hours: the default.
		{"no zone is UTC", nil, office, "2026-03-04T08:30:00Z", false, "2026-03-04T09:00:00Z"},
		{"unknown zone is UTC", []string{"Mars/Olympus_Mons"}, office, "2026-03-04T08:30:00Z", false, "2026-03-04T09:00:00Z"},
		{"nil hours are the default", []string{"UTC"}, nil, "2026-03-04T07:59:00Z", false, "2026-03-04T08:00:00Z"},
		{"malformed window ignored", []string{"UTC"}, chours(cwin(hoursEveryDay, "9:00", "18:00"), cwin(hoursWeekdays, "10:00", "11:00")), "2026-03-04T09:30:00Z", false, "2026-03-04T10:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			at := mustUTC(tc.at)
			allowed, next := NextAllowed(tc.zones, tc.hours, at)
			if allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (next %v)", allowed, tc.allowed, next)
			}
			switch {
			case allowed && !next.Equal(at):
				t.Errorf("allowed, next = %v, want t itself", next)
			case !allowed && tc.next == "" && !next.IsZero():
				t.Errorf("next = %v, want never", next.UTC())
			case !allowed && tc.next != "" && !next.Equal(mustUTC(tc.next)):
				t.Errorf("next = %v, want %v", next.UTC(), tc.next)
			}
		})
	}
}

// TestHoursNextAllowedBruteForce checks NextAllowed against a minute by
// minute walk: next is allowed and nothing between t and next is.
func TestHoursNextAllowedBruteForce(t *testing.T) {
	t.Parallel()
	zoneSets := [][]string{
		{"Europe/Madrid"}, {"America/New_York"}, {"America/Boise", "America/Los_Angeles"},
		{"Australia/Adelaide", "Australia/Perth"}, {"America/Sao_Paulo"}, {"Asia/Kolkata", "Europe/London"},
	}
	hs := []*dialerv1.CallingHours{
		DefaultCallingHours(),
		chours(cwin(hoursWeekdays, "09:00", "12:30"), cwin(hoursWeekdays, "14:00", "18:00"), cwin([]int32{6}, "10:00", "13:00")),
		chours(cwin([]int32{0}, "01:30", "03:15"), cwin([]int32{3}, "22:00", "24:00")),
	}
	// Around the 2026 transitions of the zones above, and ordinary days.
	starts := []string{"2026-03-07T20:00:00Z", "2026-03-28T18:00:00Z", "2026-04-04T10:00:00Z", "2026-10-24T18:00:00Z", "2026-10-31T20:00:00Z", "2026-06-10T00:00:00Z"}
	for _, zs := range zoneSets {
		for hi, h := range hs {
			for _, s := range starts {
				at := mustUTC(s)
				allowed, next := NextAllowed(zs, h, at)
				locs, ws := locations(zs), parseWindows(h)
				if allowed != allowedAt(locs, ws, at) {
					t.Fatalf("%v hours#%d at %s: allowed %v disagrees with allowedAt", zs, hi, s, allowed)
				}
				if allowed {
					continue
				}
				if next.IsZero() {
					// Never: no minute of the next eight days may be allowed.
					next = at.Add(hoursHorizon * 24 * time.Hour)
					for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
						if allowedAt(locs, ws, m) {
							t.Fatalf("%v hours#%d at %s: never, but %v is allowed", zs, hi, s, m.UTC())
						}
					}
					continue
				}
				if !allowedAt(locs, ws, next) {
					t.Fatalf("%v hours#%d at %s: next %v is not allowed", zs, hi, s, next.UTC())
				}
				for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
					if allowedAt(locs, ws, m) {
						t.Fatalf("%v hours#%d at %s: %v is allowed, before next %v", zs, hi, s, m.UTC(), next.UTC())
					}
				}
			}
		}
	}
}

func TestHoursRecipientZones(t *testing.T) {
	t.Parallel()
	dir := direction.NewResolver(0)
	tests := []struct {
		name, number, country string
		want                  []string // nil: UTC
		contains              string   // when the list is long
	}{
		{name: "Sao Paulo mobile", number: "+5511987654321", want: []string{"America/Sao_Paulo"}},
		{name: "Madrid", number: "+34911234567", want: []string{"Europe/Madrid"}},
		{name: "US area code over two zones", number: "+12085551234", want: []string{"America/Boise", "America/Los_Angeles"}},
		{name: "Perth and Adelaide", number: "+61892345678", want: []string{"Australia/Adelaide", "Australia/Perth"}},
		{name: "invalid Spanish number: Spain's zones", number: "+34123", want: []string{"Atlantic/Canary", "Europe/Madrid"}},
		{name: "unplaced +1 number: every +1 zone", number: "+15551230002", contains: "America/New_York"},
		{name: "garbage: the default country's", number: "garbage", country: "BR", contains: "America/Sao_Paulo"},
		{name: "garbage, no country: UTC", number: "garbage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := recipientZones(dir, tc.number, tc.country)
			if tc.contains != "" {
				if len(got) < 2 || !slices.Contains(got, tc.contains) {
					t.Fatalf("zones %v, want several with %s", got, tc.contains)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("zones %v, want %v", got, tc.want)
			}
		})
	}
}
