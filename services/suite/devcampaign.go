package suite

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/origination"
)

// Development campaign: what `make run` shows at /demo/banner.
const (
	DevCampaignName  = "Development banner"
	DevOperatorName  = "Reception"
	DevOperatorPhone = "+15550000001" // the simulator answers numbers ending in 0001
)

// EnsureDevCampaign creates, unless they exist, the development account's
// operator endpoint and click-to-call campaign: the visitor first, an
// announcement, two redials 5 s apart, any web origin, no challenge, and
// limits loose enough for trying it by hand and from scripts.
func EnsureDevCampaign(ctx context.Context, originationAddr, accountID string) (*originationv1.Campaign, error) {
	conn, err := grpc.NewClient(originationAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, origination.AccountHeader, accountID)
	eps := originationv1.NewEndpointServiceClient(conn)
	var operator string
	list, err := eps.ListEndpoints(ctx, &originationv1.ListEndpointsRequest{PageSize: 500})
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	for _, e := range list.GetEndpoints() {
		if e.GetName() == DevOperatorName {
			operator = e.GetId()
		}
	}
	if operator == "" {
		e, err := eps.CreateEndpoint(ctx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
			Name: DevOperatorName, Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: DevOperatorPhone}})
		if err != nil {
			return nil, fmt.Errorf("create the operator endpoint: %w", err)
		}
		operator = e.GetEndpoint().GetId()
	}
	camps := originationv1.NewCampaignServiceClient(conn)
	all, err := camps.ListCampaigns(ctx, &originationv1.ListCampaignsRequest{PageSize: 500})
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	for _, c := range all.GetCampaigns() {
		if c.GetName() == DevCampaignName {
			return c, nil
		}
	}
	resp, err := camps.CreateCampaign(ctx, &originationv1.CreateCampaignRequest{Campaign: &originationv1.Campaign{
		Name: DevCampaignName, Enabled: proto.Bool(true), OperatorEndpointIds: []string{operator},
		RingStrategy: originationv1.RingStrategy_RING_STRATEGY_ALL, FirstParty: originationv1.FirstParty_FIRST_PARTY_VISITOR,
		Announcement:          "ivr/ivr-please_hold_while_party_contacted.wav",
		VisitorCallerIdNumber: "+15550000100", VisitorCallerIdName: "Ringback demo",
		RedialAttempts: 2, RedialIntervalS: 5, AllowedOrigins: []string{"*"}, DefaultCountry: "US",
		ReminderTimeoutS: 3600, PricePerCompletedCallMicros: 250_000, PriceCurrency: "USD",
		Challenge: originationv1.ChallengeMode_CHALLENGE_MODE_OFF,
		Limits:    &originationv1.BannerLimits{PerIpPerHour: 1000, PerNumberPerDay: 200, PerCampaignPerMinute: 600, DuplicateWindowS: 10},
	}})
	if err != nil {
		return nil, fmt.Errorf("create the campaign: %w", err)
	}
	return resp.GetCampaign(), nil
}
