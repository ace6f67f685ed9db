package origination

import (
	"context"
	"fmt"
	"strings"
)

// EndpointKind is how an endpoint is reached.
type EndpointKind string

// Endpoint kinds.
const (
	// KindRegisteredUser is a phone registered to FreeSWITCH (user/<ext>).
	KindRegisteredUser EndpointKind = "REGISTERED_USER"
	// KindSIPUser is a SIP URI reached through the internal profile.
	KindSIPUser EndpointKind = "SIP_USER"
	// KindExternalNumber is a phone number reached through the carrier.
	KindExternalNumber EndpointKind = "EXTERNAL_NUMBER"
)

// Endpoint is an agent's or operator's phone.
type Endpoint struct {
	ID             string
	AccountID      string
	Name           string
	Kind           EndpointKind
	Address        string // extension, user@host, or E.164 number
	CallerIDNumber string
	RingTimeoutMS  int
}

// Endpoints looks endpoints up (PostgreSQL in production).
type Endpoints interface {
	Get(ctx context.Context, accountID, id string) (*Endpoint, error)
}

// DialPlan turns parties into FreeSWITCH dial strings.
type DialPlan struct {
	Gateway   string // carrier gateway for numbers; default "carrier"
	Profile   string // sofia profile for SIP users; default "internal"
	Endpoints Endpoints
}

// Resolve implements Resolver.
func (d DialPlan) Resolve(ctx context.Context, accountID string, p PartySpec) (Leg, error) {
	gw, prof := d.Gateway, d.Profile
	if gw == "" {
		gw = "carrier"
	}
	if prof == "" {
		prof = "internal"
	}
	leg := Leg{CallerIDNumber: p.CallerIDNumber, CallerIDName: p.CallerIDName, RingTimeoutMS: p.RingTimeoutMS}
	if leg.CallerIDNumber != "" {
		n, err := NormalizeNumber(leg.CallerIDNumber)
		if err != nil {
			return Leg{}, fmt.Errorf("%w: caller_id_number: %v", ErrInvalid, err)
		}
		leg.CallerIDNumber = n
	}
	if strings.ContainsAny(leg.CallerIDName, "{}[],'\"|\n\r") {
		return Leg{}, fmt.Errorf("%w: caller_id_name has characters a dial string cannot carry", ErrInvalid)
	}
	switch {
	case p.Number != "" && p.EndpointID != "":
		return Leg{}, fmt.Errorf("%w: give a number or an endpoint_id, not both", ErrInvalid)
	case p.Number != "":
		n, err := NormalizeNumber(p.Number)
		if err != nil {
			return Leg{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		leg.Number, leg.Address = n, n
		leg.DialString = "sofia/gateway/" + gw + "/" + strings.TrimPrefix(n, "+")
		return leg, nil
	case p.EndpointID != "":
		if d.Endpoints == nil {
			return Leg{}, fmt.Errorf("%w: endpoint %s", ErrUnknownEndpoint, p.EndpointID)
		}
		ep, err := d.Endpoints.Get(ctx, accountID, p.EndpointID)
		if err != nil {
			return Leg{}, err
		}
		leg.EndpointID, leg.EndpointName, leg.Address = ep.ID, ep.Name, ep.Address
		if leg.CallerIDNumber == "" {
			leg.CallerIDNumber = ep.CallerIDNumber
		}
		if leg.RingTimeoutMS == 0 {
			leg.RingTimeoutMS = ep.RingTimeoutMS
		}
		switch ep.Kind {
		case KindRegisteredUser:
			leg.DialString = "user/" + ep.Address
		case KindSIPUser:
			leg.DialString = "sofia/" + prof + "/" + ep.Address
		default:
			leg.Number = ep.Address
			leg.DialString = "sofia/gateway/" + gw + "/" + strings.TrimPrefix(ep.Address, "+")
		}
		return leg, nil
	}
	return Leg{}, fmt.Errorf("%w: a party needs a number or an endpoint_id", ErrInvalid)
}
