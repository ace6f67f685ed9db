package cdr

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones on hosts without the database

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/phone"
)

// Bounds of queries.
const (
	// DefaultRange is the range of a query without a start: the carrier's
	// "recent" (24 hours).
	DefaultRange = 24 * time.Hour
	// MaxRange is the longest range one query may span.
	MaxRange = 366 * 24 * time.Hour
	// DefaultPageSize and MaxPageSize bound ListCdrs pages.
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxOffset bounds ListCdrs' offset (the carrier-compatible ini).
	MaxOffset = 1_000_000
)

// QueryFrom validates a filter and turns it into a Query for account.
// An unset end is now; an unset start is DefaultRange before the end.
func QueryFrom(account string, f *cdrv1.CdrFilter, now time.Time) (Query, error) {
	q := Query{Account: account, End: now}
	if t := f.GetEndTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return Query{}, ErrInvalidRange.WithMsg("end_time: " + err.Error())
		}
		q.End = t.AsTime()
	}
	q.Start = q.End.Add(-DefaultRange)
	if t := f.GetStartTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return Query{}, ErrInvalidRange.WithMsg("start_time: " + err.Error())
		}
		q.Start = t.AsTime()
	}
	if !q.Start.Before(q.End) {
		return Query{}, ErrInvalidRange.WithMsg(fmt.Sprintf("start_time %s is not before end_time %s",
			q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339)))
	}
	if q.End.Sub(q.Start) > MaxRange {
		return Query{}, ErrInvalidRange.WithMsg("a query spans at most 366 days")
	}
	if len(f.GetCampaignId()) > 64 || len(f.GetEndpointId()) > 64 {
		return Query{}, ErrInvalidArgument.WithMsg("campaign_id and endpoint_id have at most 64 characters")
	}
	q.CampaignID, q.EndpointID = f.GetCampaignId(), f.GetEndpointId()
	for _, s := range f.GetStatuses() {
		switch s {
		case originationv1.CallStatus_CALL_STATUS_COMPLETED, originationv1.CallStatus_CALL_STATUS_FAILED,
			originationv1.CallStatus_CALL_STATUS_CANCELED:
			q.Statuses = append(q.Statuses, int16(s))
		default:
			return Query{}, ErrInvalidArgument.WithMsg(fmt.Sprintf("statuses: %s is not a final status (COMPLETED, FAILED or CANCELED)", s))
		}
	}
	if c := f.GetCountry(); c != "" {
		c = strings.ToUpper(c)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			return Query{}, ErrInvalidArgument.WithMsg(fmt.Sprintf("country %q: want an ISO 3166-1 alpha-2 code such as MX", f.GetCountry()))
		}
		q.Country = c
	}
	if n := f.GetNumber(); n != "" {
		e164, ok := phone.Lenient(n)
		if !ok {
			return Query{}, ErrInvalidArgument.WithMsg(fmt.Sprintf("number %q: want an E.164 number such as +525512345678", n))
		}
		q.Number = e164
	}
	if s := f.GetSource(); s != 0 {
		if _, ok := originationv1.CallSource_name[int32(s)]; !ok {
			return Query{}, ErrInvalidArgument.WithMsg(fmt.Sprintf("source %d is not a call source", s))
		}
		q.Source = int16(s)
	}
	switch l := f.GetFailedLeg(); l {
	case 0, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.LegRole_LEG_ROLE_SECOND:
		q.FailedLeg = int16(l)
	default:
		return Query{}, ErrInvalidArgument.WithMsg(fmt.Sprintf("failed_leg %d is not a leg", l))
	}
	return q, nil
}

// location loads an IANA time zone; "" is UTC.
func location(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	// "Local" is this host's zone, not an IANA name PostgreSQL knows.
	if err != nil || strings.Contains(name, "..") || name == "Local" {
		return nil, ErrInvalidTimeZone.WithMsg(fmt.Sprintf("time_zone %q: want an IANA name such as America/Mexico_City", name))
	}
	return loc, nil
}
