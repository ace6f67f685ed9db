// Package direction tells where a phone number goes: its country, the region
// or city it was allocated to, its original carrier, its line type and its
// time zones. Rating uses it to label calls and pick tariffs; it is built on
// the offline data of github.com/nyaruka/phonenumbers (a port of Google's
// libphonenumber), so no network lookups are involved.
package direction

import (
	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"slices"
	"strconv"
)

// LineType is the kind of line a number belongs to, as far as the numbering
// plan tells.
type LineType string

// Line types, mirroring phonenumbers.PhoneNumberType.
const (
	FixedLine         LineType = "FIXED_LINE"
	Mobile            LineType = "MOBILE"
	FixedLineOrMobile LineType = "FIXED_LINE_OR_MOBILE" // e.g. the US, where the plan does not separate them
	TollFree          LineType = "TOLL_FREE"
	PremiumRate       LineType = "PREMIUM_RATE"
	SharedCost        LineType = "SHARED_COST"
	VoIP              LineType = "VOIP"
	PersonalNumber    LineType = "PERSONAL_NUMBER"
	Pager             LineType = "PAGER"
	UAN               LineType = "UAN"
	Voicemail         LineType = "VOICEMAIL"
	Unknown           LineType = "UNKNOWN"
)

// Direction describes a phone number. The data is what the numbering plan
// says about the number, not about the subscriber: with number portability a
// number keeps its original Carrier and Region when its owner moves.
type Direction struct {
	// Country is the ISO 3166-1 alpha-2 code, e.g. "ES"; "" when unknown
	// (including non-geographic numbers such as +800).
	Country string
	// CountryName is the English name of Country, e.g. "Spain".
	CountryName string
	// Region is the city or region the number range was allocated to, in
	// English, e.g. "Madrid". It is empty when the data only knows the
	// country (typical of mobiles), so it never just repeats CountryName.
	Region string
	// Carrier is the operator the number range was originally assigned to,
	// e.g. "Movistar". Ported numbers keep their original carrier here, so
	// it is a hint, not the operator that currently serves the number.
	Carrier string
	// LineType is the number's type in its country's numbering plan.
	LineType LineType
	// TimeZones are IANA names, e.g. ["Europe/Madrid"]; empty when unknown,
	// including when the metadata only knows the country (see narrowed).
	TimeZones []string
	// Valid reports whether the number matches its country's numbering plan
	// (phonenumbers.IsValidNumber). Region and Carrier are only filled in
	// for valid numbers, since the prefix data would otherwise guess.
	Valid bool
}

// maxInputLen bounds what is worth parsing: E.164 allows 15 digits, and this
// leaves room for spaces and punctuation while keeping junk out of the cache.
const maxInputLen = 64

// lineTypeOf maps phonenumbers' types to ours.
func lineTypeOf(t phonenumbers.PhoneNumberType) LineType {
	switch t {
	case phonenumbers.FIXED_LINE:
		return FixedLine
	case phonenumbers.MOBILE:
		return Mobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return FixedLineOrMobile
	case phonenumbers.TOLL_FREE:
		return TollFree
	case phonenumbers.PREMIUM_RATE:
		return PremiumRate
	case phonenumbers.SHARED_COST:
		return SharedCost
	case phonenumbers.VOIP:
		return VoIP
	case phonenumbers.PERSONAL_NUMBER:
		return PersonalNumber
	case phonenumbers.PAGER:
		return Pager
	case phonenumbers.UAN:
		return UAN
	case phonenumbers.VOICEMAIL:
		return Voicemail
	default:
		return Unknown
	}
}

// resolve does the uncached lookup. The library's lookup functions only
// return errors when their embedded data fails to load, which would affect
// every number alike; treating that as "unknown" keeps Lookup infallible.
func resolve(e164 string) Direction {
	d := Direction{LineType: Unknown}
	if e164 == "" || len(e164) > maxInputLen {
		return d
	}
	// An empty default region makes the library insist on a leading '+',
	// which is what E.164 input promises; national formats are refused.
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return d
	}

	// "001" is the library's region for non-geographic codes (+800, +882...)
	// and "ZZ" its unknown region; neither is an ISO country.
	if rc := phonenumbers.GetRegionCodeForNumber(num); rc != "" && rc != "001" && rc != phonenumbers.UNKNOWN_REGION {
		d.Country = rc
		if reg, err := language.ParseRegion(rc); err == nil {
			d.CountryName = display.English.Regions().Name(reg)
		}
	}
	d.LineType = lineTypeOf(phonenumbers.GetNumberType(num))
	d.Valid = phonenumbers.IsValidNumber(num)

	if tzs, err := phonenumbers.GetTimezonesForNumber(num); err == nil && narrowed(num, tzs) {
		for _, tz := range tzs {
			if tz != "" && tz != phonenumbers.UNKNOWN_TIMEZONE {
				// Copy: the library hands out its internal slice.
				d.TimeZones = append(d.TimeZones, tz)
			}
		}
	}

	if d.Valid {
		// The geocoder falls back to the country name when it has nothing
		// finer; Region is meant to add to CountryName, not repeat it.
		if geo, err := phonenumbers.GetGeocodingForNumber(num, "en"); err == nil && geo != d.CountryName {
			d.Region = geo
		}
		if c, err := phonenumbers.GetCarrierForNumber(num, "en"); err == nil {
			d.Carrier = c
		}
	}
	return d
}

// narrowed reports whether tzs say more than the number's country code
// does. For a number the metadata does not place (an unknown range, a
// toll-free number) the library answers with every zone of the country:
// 42 for +1. That is not the number's zone, and carried on every event of
// every call it only costs; a dialer that must respect calling hours treats
// a number without zones as its country's, and knows which those are.
func narrowed(num *phonenumbers.PhoneNumber, tzs []string) bool {
	if len(tzs) <= 1 {
		return true
	}
	country, err := phonenumbers.GetTimezonesForPrefix(strconv.Itoa(int(num.GetCountryCode())))
	return err != nil || !slices.Equal(country, tzs)
}
