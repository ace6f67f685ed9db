package origination

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

func campaignServer(t *testing.T) (*CampaignServer, string) {
	t.Helper()
	eps := endpointServer(t)
	ctx := asAccount("acct-c")
	ep, err := eps.CreateEndpoint(ctx, &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
		Name: "Reception", Kind: originationv1.EndpointKind_ENDPOINT_KIND_EXTERNAL_NUMBER, Address: "+15550000001"}})
	if err != nil {
		t.Fatal(err)
	}
	store := &CampaignStore{DB: eps.Store.DB}
	return &CampaignServer{Store: store, Endpoints: eps.Store, Engine: &Engine{cfg: Config{MaxDuration: 4 * time.Hour}},
		cache: &campaignCache{store: store, ttl: time.Second}}, ep.GetEndpoint().GetId()
}

func TestCampaignCRUD(t *testing.T) {
	t.Parallel()
	s, op := campaignServer(t)
	ctx := asAccount("acct-c")
	created, err := s.CreateCampaign(ctx, &originationv1.CreateCampaignRequest{Campaign: &originationv1.Campaign{
		Name: "Spring sale", OperatorEndpointIds: []string{op}, RedialAttempts: 2, RedialIntervalS: 30,
		AllowedOrigins: []string{"https://Shop.Example.com/"}, DefaultCountry: "es", BlockedPrefixes: []string{"+3490"},
		VisitorCallerIdNumber: "+34 911 234 567",
		OpeningHours: &originationv1.OpeningHours{TimeZone: "Europe/Madrid",
			Windows: []*originationv1.OpeningWindow{{Days: []int32{1, 2, 3, 4, 5}, Open: "09:00", Close: "18:00"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := created.GetCampaign()
	if c.GetId() == "" || len(c.GetPublicKey()) < 20 || !c.GetEnabled() || c.GetAccountId() != "acct-c" {
		t.Fatalf("created %v", c)
	}
	if c.GetAllowedOrigins()[0] != "https://shop.example.com" || c.GetDefaultCountry() != "ES" || c.GetBlockedPrefixes()[0] != "3490" ||
		c.GetVisitorCallerIdNumber() != "+34911234567" {
		t.Fatalf("not normalized: %v", c)
	}
	if _, err := s.CreateCampaign(ctx, &originationv1.CreateCampaignRequest{Campaign: &originationv1.Campaign{Name: "Spring sale", OperatorEndpointIds: []string{op}}}); err == nil {
		t.Fatal("duplicate name accepted")
	} else {
		wantCode(t, err, codes.AlreadyExists, "CAMPAIGN_EXISTS")
	}
	// Another account sees nothing.
	_, err = s.GetCampaign(asAccount("acct-other"), &originationv1.GetCampaignRequest{Id: c.GetId()})
	wantCode(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")

	up, err := s.UpdateCampaign(ctx, &originationv1.UpdateCampaignRequest{
		Campaign:   &originationv1.Campaign{Id: c.GetId(), RedialAttempts: 5, Limits: &originationv1.BannerLimits{PerIpPerHour: 7}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"redial_attempts", "limits.per_ip_per_hour", "enabled"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := up.GetCampaign()
	if u.GetRedialAttempts() != 5 || u.GetLimits().GetPerIpPerHour() != 7 || u.GetRedialIntervalS() != 30 || u.Enabled != nil {
		t.Fatalf("updated %v", u)
	}
	if u.GetPublicKey() != c.GetPublicKey() {
		t.Fatal("an update changed the key")
	}
	rot, err := s.RotateCampaignKey(ctx, &originationv1.RotateCampaignKeyRequest{Id: c.GetId()})
	if err != nil || rot.GetCampaign().GetPublicKey() == c.GetPublicKey() {
		t.Fatalf("rotate: %v %v", rot, err)
	}
	list, err := s.ListCampaigns(ctx, &originationv1.ListCampaignsRequest{})
	if err != nil || len(list.GetCampaigns()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	if _, err := s.DeleteCampaign(ctx, &originationv1.DeleteCampaignRequest{Id: c.GetId()}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCampaign(ctx, &originationv1.GetCampaignRequest{Id: c.GetId()})
	wantCode(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
}

func TestCampaignValidation(t *testing.T) {
	t.Parallel()
	s, op := campaignServer(t)
	ctx := asAccount("acct-c")
	for name, c := range map[string]*originationv1.Campaign{
		"no operators":     {Name: "x"},
		"unknown operator": {Name: "x", OperatorEndpointIds: []string{"7d1b0c4e-0000-4000-8000-000000000000"}},
		"too many redials": {Name: "x", OperatorEndpointIds: []string{op}, RedialAttempts: 11},
		"bad origin":       {Name: "x", OperatorEndpointIds: []string{op}, AllowedOrigins: []string{"shop.example.com/path"}},
		"bad hours":        {Name: "x", OperatorEndpointIds: []string{op}, OpeningHours: &originationv1.OpeningHours{TimeZone: "Mars/Base", Windows: []*originationv1.OpeningWindow{{Days: []int32{1}, Open: "09:00", Close: "17:00"}}}},
		"close before open": {Name: "x", OperatorEndpointIds: []string{op}, OpeningHours: &originationv1.OpeningHours{TimeZone: "UTC",
			Windows: []*originationv1.OpeningWindow{{Days: []int32{1}, Open: "18:00", Close: "09:00"}}}},
		"bad country":      {Name: "x", OperatorEndpointIds: []string{op}, DefaultCountry: "XX"},
		"bad prefix":       {Name: "x", OperatorEndpointIds: []string{op}, BlockedPrefixes: []string{"19a"}},
		"dial string name": {Name: "x", OperatorEndpointIds: []string{op}, OperatorCallerIdName: "a,b"},
		"bad announcement": {Name: "x", OperatorEndpointIds: []string{op}, Announcement: "a file with spaces.wav"},
		"negative price":   {Name: "x", OperatorEndpointIds: []string{op}, PricePerCompletedCallMicros: -1},
	} {
		_, err := s.CreateCampaign(ctx, &originationv1.CreateCampaignRequest{Campaign: c})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if name == "unknown operator" {
			wantCode(t, err, codes.NotFound, "ENDPOINT_NOT_FOUND")
		} else {
			wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
		}
	}
}

func TestNextOpen(t *testing.T) {
	oh := &originationv1.OpeningHours{TimeZone: "Europe/Madrid", Windows: []*originationv1.OpeningWindow{
		{Days: []int32{1, 2, 3, 4, 5}, Open: "09:00", Close: "14:00"},
		{Days: []int32{1, 2, 3, 4, 5}, Open: "16:00", Close: "19:00"},
	}}
	mad, _ := time.LoadLocation("Europe/Madrid")
	for _, tt := range []struct {
		now      time.Time
		open     bool
		nextOpen time.Time
	}{
		{time.Date(2026, 11, 23, 10, 0, 0, 0, mad), true, time.Time{}},                                 // Monday morning
		{time.Date(2026, 11, 23, 14, 30, 0, 0, mad), false, time.Date(2026, 11, 23, 16, 0, 0, 0, mad)}, // lunch
		{time.Date(2026, 11, 27, 19, 0, 0, 0, mad), false, time.Date(2026, 11, 30, 9, 0, 0, 0, mad)},   // Friday close -> Monday
		{time.Date(2026, 11, 22, 12, 0, 0, 0, mad), false, time.Date(2026, 11, 23, 9, 0, 0, 0, mad)},   // Sunday
		{time.Date(2026, 3, 27, 20, 0, 0, 0, mad), false, time.Date(2026, 3, 30, 9, 0, 0, 0, mad)},     // across the DST change
	} {
		open, next := NextOpen(oh, tt.now)
		if open != tt.open || !next.Equal(tt.nextOpen) {
			t.Errorf("at %v: open %v next %v, want %v %v", tt.now, open, next, tt.open, tt.nextOpen)
		}
	}
	if open, _ := NextOpen(nil, time.Now()); !open {
		t.Error("no hours: always open")
	}
}

func TestCallBackOncePlacesOneCallback(t *testing.T) {
	t.Parallel()
	s, _ := campaignServer(t)
	ctx := context.Background()
	var placed atomic.Int32
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Store.CallBackOnce(ctx, "acct-c", "7d1b0c4e-0000-4000-8000-000000000001", "failed-1", false, func() (string, error) {
				return "cb-" + string(rune('a'+placed.Add(1))), nil
			})
		}()
	}
	wg.Wait()
	if placed.Load() != 1 {
		t.Fatalf("%d callbacks placed for one failed call", placed.Load())
	}
	refused := 0
	for _, err := range errs {
		if err != nil {
			wantCode(t, campaignGRPCError(err), codes.FailedPrecondition, "ALREADY_CALLED_BACK")
			refused++
		}
	}
	if refused != 7 {
		t.Fatalf("%d refused, want 7", refused)
	}
	id, err := s.Store.CallBackOnce(ctx, "acct-c", "7d1b0c4e-0000-4000-8000-000000000001", "failed-1", true, func() (string, error) { return "cb-forced", nil })
	if err != nil || id != "cb-forced" {
		t.Fatalf("forced: %s %v", id, err)
	}
	cbs, err := s.Store.Callbacks(ctx, "acct-c", []string{"failed-1", "failed-2"})
	if err != nil || len(cbs) != 1 || cbs["failed-1"].CallID != "cb-forced" {
		t.Fatalf("callbacks %v %v", cbs, err)
	}
}

func TestBannerCallRequestFollowsTheCampaign(t *testing.T) {
	camp := &originationv1.Campaign{Id: "c1", AccountId: "a1", Name: "Sale, now", OperatorEndpointIds: []string{"e1", "e2"},
		RingStrategy: originationv1.RingStrategy_RING_STRATEGY_IN_ORDER, FirstParty: originationv1.FirstParty_FIRST_PARTY_COMPANY,
		RedialAttempts: 2, PricePerCompletedCallMicros: 500000, VisitorRingTimeoutMs: 25000}
	req := BannerCallRequest(camp, "+15551230001", nil)
	cc := req.Campaign
	if cc.VisitorRole != RoleSecond || req.Second.Number != "+15551230001" || req.Second.RingTimeoutMS != 25000 || cc.RingAll ||
		cc.MaxAttempts != 3 || cc.RedialInterval != DefaultRedialInterval || cc.PriceCurrency != "USD" || len(cc.Operators) != 2 {
		t.Fatalf("request %+v campaign %+v", req, cc)
	}
	if n := cc.Operators[0].CallerIDName; n != "Sale now" || cc.Operators[0].CallerIDNumber != "+15551230001" {
		t.Fatalf("operators see %q %q", n, cc.Operators[0].CallerIDNumber)
	}
}
