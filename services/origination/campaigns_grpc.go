package origination

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/fieldmask"
)

// CampaignServer is the CampaignService gRPC API.
type CampaignServer struct {
	originationv1.UnimplementedCampaignServiceServer
	Store     *CampaignStore
	Endpoints Endpoints
	Engine    *Engine
	// CDRs reads failed calls back from the call records.
	CDRs  cdrv1.CdrServiceClient
	cache *campaignCache
}

func campaignGRPCError(err error) error {
	switch {
	case errors.Is(err, ErrCampaignNotFound):
		return statusError(codes.NotFound, "CAMPAIGN_NOT_FOUND", "campaign not found")
	case errors.Is(err, ErrCampaignExists):
		return statusError(codes.AlreadyExists, "CAMPAIGN_EXISTS", "the account already has a campaign with that name")
	case errors.Is(err, errCalledBack):
		return statusError(codes.FailedPrecondition, "ALREADY_CALLED_BACK", err.Error())
	}
	return GRPCError(err)
}

// outputOnly are the Campaign fields a client cannot set.
var outputOnly = map[string]bool{"id": true, "account_id": true, "public_key": true, "created_at": true, "updated_at": true}

// CreateCampaign validates and stores a campaign.
func (s *CampaignServer) CreateCampaign(ctx context.Context, req *originationv1.CreateCampaignRequest) (*originationv1.CreateCampaignResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	c := proto.Clone(req.GetCampaign()).(*originationv1.Campaign)
	if c == nil {
		c = &originationv1.Campaign{}
	}
	if c.Enabled == nil {
		c.Enabled = proto.Bool(true)
	}
	if err := validateCampaign(ctx, s.Endpoints, account, c, s.Engine.cfg.MaxDuration); err != nil {
		return nil, campaignGRPCError(err)
	}
	out, err := s.Store.Create(ctx, account, c)
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	return &originationv1.CreateCampaignResponse{Campaign: out}, nil
}

// GetCampaign returns one of the caller's campaigns.
func (s *CampaignServer) GetCampaign(ctx context.Context, req *originationv1.GetCampaignRequest) (*originationv1.GetCampaignResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.Store.Get(ctx, account, req.GetId())
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	return &originationv1.GetCampaignResponse{Campaign: c}, nil
}

// ListCampaigns pages through the caller's campaigns by name.
func (s *CampaignServer) ListCampaigns(ctx context.Context, req *originationv1.ListCampaignsRequest) (*originationv1.ListCampaignsResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	var afterName, afterID string
	if tok := req.GetPageToken(); tok != "" {
		n, id, ok := strings.Cut(tok, "\x00")
		if !ok || !uuidRe.MatchString(id) {
			return nil, statusError(codes.InvalidArgument, "INVALID_PAGE_TOKEN", "page_token is not one this API issued")
		}
		afterName, afterID = n, id
	}
	list, err := s.Store.List(ctx, account, size+1, afterName, afterID)
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	resp := &originationv1.ListCampaignsResponse{}
	if len(list) > size {
		list = list[:size]
		last := list[size-1]
		resp.NextPageToken = last.GetName() + "\x00" + last.GetId()
	}
	resp.Campaigns = list
	return resp, nil
}

// UpdateCampaign changes the fields in update_mask.
func (s *CampaignServer) UpdateCampaign(ctx context.Context, req *originationv1.UpdateCampaignRequest) (*originationv1.UpdateCampaignResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetCampaign()
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = fieldmask.Present(in)
	}
	out, err := s.Store.Update(ctx, account, in.GetId(), false, func(cur *originationv1.Campaign) error {
		for _, p := range paths {
			if outputOnly[p] {
				continue // identity and output-only: grpc-gateway may include them
			}
			if err := copyPath(cur, in, p); err != nil {
				return err
			}
		}
		return validateCampaign(ctx, s.Endpoints, account, cur, s.Engine.cfg.MaxDuration)
	})
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	s.forget(out.GetId())
	return &originationv1.UpdateCampaignResponse{Campaign: out}, nil
}

// copyPath sets the field at a dotted path of dst to src's value (cleared
// when src does not have it).
func copyPath(dst, src proto.Message, path string) error {
	if err := fieldmask.Copy(dst, src, path); err != nil {
		return fmt.Errorf("%w: update_mask: %q is not a campaign field", ErrInvalid, path)
	}
	return nil
}

// DeleteCampaign removes one of the caller's campaigns.
func (s *CampaignServer) DeleteCampaign(ctx context.Context, req *originationv1.DeleteCampaignRequest) (*originationv1.DeleteCampaignResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Store.Delete(ctx, account, req.GetId()); err != nil {
		return nil, campaignGRPCError(err)
	}
	s.forget(req.GetId())
	return &originationv1.DeleteCampaignResponse{}, nil
}

// RotateCampaignKey gives a campaign a new public key.
func (s *CampaignServer) RotateCampaignKey(ctx context.Context, req *originationv1.RotateCampaignKeyRequest) (*originationv1.RotateCampaignKeyResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.Store.Update(ctx, account, req.GetId(), true, nil)
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	s.forget(out.GetId())
	return &originationv1.RotateCampaignKeyResponse{Campaign: out}, nil
}

func (s *CampaignServer) forget(id string) {
	if s.cache != nil {
		s.cache.forget(id)
	}
}

// ListFailedCalls reads the campaign's failed calls from the call records.
func (s *CampaignServer) ListFailedCalls(ctx context.Context, req *originationv1.ListFailedCallsRequest) (*originationv1.ListFailedCallsResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store.Get(ctx, account, req.GetCampaignId()); err != nil {
		return nil, campaignGRPCError(err)
	}
	if s.CDRs == nil {
		return nil, statusError(codes.Unavailable, "CDR_UNAVAILABLE", "the call records are not reachable")
	}
	start := req.GetStartTime()
	if start == nil {
		start = timestamppb.New(time.Now().Add(-7 * 24 * time.Hour))
	}
	size := req.GetPageSize()
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	out := metadata.NewOutgoingContext(ctx, metadata.Pairs(AccountHeader, account))
	page, err := s.CDRs.ListCdrs(out, &cdrv1.ListCdrsRequest{
		Filter: &cdrv1.CdrFilter{StartTime: start, EndTime: req.GetEndTime(), CampaignId: req.GetCampaignId(),
			Statuses: []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_FAILED}},
		PageSize: size, PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err // the cdr service's status, reason and all
	}
	var failedIDs []string
	for _, r := range page.GetCdrs() {
		failedIDs = append(failedIDs, r.GetCall().GetId())
	}
	cbs, err := s.Store.Callbacks(ctx, account, failedIDs)
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	resp := &originationv1.ListFailedCallsResponse{NextPageToken: page.GetNextPageToken()}
	for _, r := range page.GetCdrs() {
		fc := FailedCallOf(r.GetCall())
		if cb, ok := cbs[fc.GetCallId()]; ok {
			if req.GetPendingOnly() {
				continue
			}
			fc.CallbackCallId, fc.CalledBackAt = cb.CallID, timestamppb.New(cb.At)
		}
		resp.Calls = append(resp.Calls, fc)
	}
	return resp, nil
}

// FailedCallOf summarizes a failed campaign call.
func FailedCallOf(c *originationv1.Call) *originationv1.FailedCall {
	visitor := c.GetFirst()
	if c.GetVisitorLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		visitor = c.GetSecond()
	}
	failed := c.GetFirst()
	if c.GetFailedLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		failed = c.GetSecond()
	}
	outcome := c.GetOutcome()
	if outcome == "" {
		outcome = OutcomeFailedToCompany
		if c.GetFailedLeg() == c.GetVisitorLeg() {
			outcome = OutcomeFailedToUser
		}
	}
	return &originationv1.FailedCall{
		CallId: c.GetId(), VisitorNumber: visitor.GetParty().GetNumber(), Outcome: outcome,
		FailureReason: c.GetFailureReason(), HangupCause: failed.GetHangupCause(), Attempts: max(c.GetAttempt(), 1),
		CreatedAt: c.GetCreatedAt(), EndedAt: c.GetEndedAt(), VisitorName: c.GetVariables()[VarVisitorName],
	}
}

// CallBack calls a failed call's visitor back, the company first.
func (s *CampaignServer) CallBack(ctx context.Context, req *originationv1.CallBackRequest) (*originationv1.CallBackResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	camp, err := s.Store.Get(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	failed, err := s.failedCall(ctx, account, req.GetCallId())
	if err != nil {
		return nil, err
	}
	if failed.GetCampaignId() != camp.GetId() || failed.GetStatus() != originationv1.CallStatus_CALL_STATUS_FAILED {
		return nil, statusError(codes.NotFound, "CALL_NOT_FOUND", "not a failed call of this campaign")
	}
	number := FailedCallOf(failed).GetVisitorNumber()
	if number == "" {
		return nil, statusError(codes.FailedPrecondition, "NO_VISITOR_NUMBER", "the failed call has no visitor number to call back")
	}
	var call *Call
	_, err = s.Store.CallBackOnce(ctx, account, camp.GetId(), failed.GetId(), req.GetForce(), func() (string, error) {
		creq := BannerCallRequest(camp, number, failed.GetVariables())
		creq.Campaign.VisitorRole = RoleSecond // the company first
		creq.Campaign.MaxAttempts = 1          // an operator waits: no redials
		creq.Campaign.NotBefore = time.Time{}  // the company is there now
		creq.Campaign.CallbackOf = failed.GetId()
		creq.First, creq.Second = creq.Second, creq.First
		creq.Source = "BANNER"
		c, err := s.Engine.Create(ctx, creq)
		if err != nil {
			return "", err
		}
		call = c
		return c.ID, nil
	})
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	return &originationv1.CallBackResponse{Call: ToProto(call, time.Now())}, nil
}

// failedCall finds a call: live state first (kept a day), then the records.
func (s *CampaignServer) failedCall(ctx context.Context, account, id string) (*originationv1.Call, error) {
	if id == "" || len(id) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "call_id is required")
	}
	if c, err := s.Engine.Get(ctx, id); err == nil {
		if c.AccountID != account {
			return nil, statusError(codes.NotFound, "CALL_NOT_FOUND", "call not found")
		}
		return ToProto(c, time.Now()), nil
	}
	if s.CDRs == nil {
		return nil, statusError(codes.NotFound, "CALL_NOT_FOUND", "call not found")
	}
	out := metadata.NewOutgoingContext(ctx, metadata.Pairs(AccountHeader, account))
	r, err := s.CDRs.GetCdr(out, &cdrv1.GetCdrRequest{CallId: id})
	if err != nil {
		return nil, err
	}
	return r.GetCdr().GetCall(), nil
}

// Variables a banner call carries (to every event and webhook: a CRM's
// screen pop shows the visitor's name).
const (
	VarVisitorName = "banner_visitor_name"
	VarConsent     = "banner_consent"
	VarClientIP    = "banner_client_ip"
	VarOrigin      = "banner_origin"
)

// BannerCallRequest is the call a campaign places for a visitor's number:
// the visitor first unless the campaign calls the company first.
func BannerCallRequest(camp *originationv1.Campaign, number string, vars map[string]string) CreateRequest {
	interval := time.Duration(camp.GetRedialIntervalS()) * time.Second
	if interval == 0 {
		interval = DefaultRedialInterval
	}
	visitorRing := int(camp.GetVisitorRingTimeoutMs())
	if visitorRing == 0 {
		visitorRing = int(DefaultVisitorRingTimeout / time.Millisecond)
	}
	opName := camp.GetOperatorCallerIdName()
	if opName == "" {
		opName = strings.Map(func(r rune) rune {
			if strings.ContainsRune("{}[],'\"|\n\r\x00", r) {
				return -1
			}
			return r
		}, camp.GetName())
		if len(opName) > 80 {
			opName = opName[:80]
		}
	}
	var ops []PartySpec
	for _, id := range camp.GetOperatorEndpointIds() {
		ops = append(ops, PartySpec{EndpointID: id, CallerIDNumber: number, CallerIDName: opName, RingTimeoutMS: int(camp.GetOperatorRingTimeoutMs())})
	}
	visitor := PartySpec{Number: number, CallerIDNumber: camp.GetVisitorCallerIdNumber(), CallerIDName: camp.GetVisitorCallerIdName(), RingTimeoutMS: visitorRing}
	req := CreateRequest{
		AccountID: camp.GetAccountId(), Source: "BANNER", Mode: ModeSequential, Announcement: camp.GetAnnouncement(),
		MaxDurationS: int(camp.GetMaxDurationS()), ReminderTimeoutS: int(camp.GetReminderTimeoutS()), Variables: vars,
		First: visitor,
		Campaign: &CampaignCall{ID: camp.GetId(), VisitorRole: RoleFirst, Operators: ops,
			RingAll:     camp.GetRingStrategy() != originationv1.RingStrategy_RING_STRATEGY_IN_ORDER,
			MaxAttempts: 1 + int(camp.GetRedialAttempts()), RedialInterval: interval,
			PriceMicros: camp.GetPricePerCompletedCallMicros(), PriceCurrency: camp.GetPriceCurrency()},
	}
	if req.Campaign.PriceCurrency == "" && req.Campaign.PriceMicros > 0 {
		req.Campaign.PriceCurrency = "USD"
	}
	if camp.GetFirstParty() == originationv1.FirstParty_FIRST_PARTY_COMPANY {
		req.Campaign.VisitorRole = RoleSecond
		req.First, req.Second = req.Second, req.First
	}
	return req
}

// BannerServer is the BannerService gRPC API (the gateway's half of the
// public banner endpoint).
type BannerServer struct {
	originationv1.UnimplementedBannerServiceServer
	Engine   *Engine
	Campaign *campaignCache
	Draining func() bool
	Now      func() time.Time
}

// GetPublicCampaign returns what the gateway admits requests with.
func (s *BannerServer) GetPublicCampaign(ctx context.Context, req *originationv1.GetPublicCampaignRequest) (*originationv1.GetPublicCampaignResponse, error) {
	c, err := s.Campaign.get(ctx, req.GetId())
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	challenge := c.GetChallenge()
	if challenge == originationv1.ChallengeMode_CHALLENGE_MODE_UNSPECIFIED {
		challenge = originationv1.ChallengeMode_CHALLENGE_MODE_ADAPTIVE
	}
	first := c.GetFirstParty()
	if first == originationv1.FirstParty_FIRST_PARTY_UNSPECIFIED {
		first = originationv1.FirstParty_FIRST_PARTY_VISITOR
	}
	return &originationv1.GetPublicCampaignResponse{Campaign: &originationv1.PublicCampaign{
		Id: c.GetId(), AccountId: c.GetAccountId(), Enabled: c.GetEnabled(), PublicKey: c.GetPublicKey(),
		AllowedOrigins: c.GetAllowedOrigins(), DefaultCountry: c.GetDefaultCountry(), Limits: withDefaults(c.GetLimits()),
		BlockedPrefixes: c.GetBlockedPrefixes(), Challenge: challenge, FirstParty: first, RedialAttempts: c.GetRedialAttempts(),
	}}, nil
}

// StartBannerCall places a visitor's call.
func (s *BannerServer) StartBannerCall(ctx context.Context, req *originationv1.StartBannerCallRequest) (*originationv1.StartBannerCallResponse, error) {
	account, err := AccountFromContext(ctx)
	if err != nil {
		return nil, err
	}
	if s.Draining != nil && s.Draining() {
		return nil, errDraining
	}
	c, err := s.Campaign.get(ctx, req.GetCampaignId())
	if err != nil {
		return nil, campaignGRPCError(err)
	}
	if c.GetAccountId() != account {
		return nil, campaignGRPCError(ErrCampaignNotFound)
	}
	if !c.GetEnabled() {
		return nil, statusError(codes.FailedPrecondition, "CAMPAIGN_DISABLED", "the campaign does not accept calls")
	}
	number, err := NormalizeNumber(req.GetNumber())
	if err != nil {
		return nil, statusError(codes.InvalidArgument, "INVALID_NUMBER", err.Error())
	}
	if len(req.GetVisitorName()) > 100 || len(req.GetConsent()) > 1000 || len(req.GetOrigin()) > 300 || len(req.GetClientIp()) > 64 {
		return nil, statusError(codes.InvalidArgument, "INVALID_ARGUMENT", "visitor_name at most 100 characters, consent 1000")
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	vars := map[string]string{}
	for k, v := range map[string]string{VarVisitorName: req.GetVisitorName(), VarConsent: req.GetConsent(),
		VarClientIP: req.GetClientIp(), VarOrigin: req.GetOrigin()} {
		if v != "" {
			vars[k] = v
		}
	}
	creq := BannerCallRequest(c, number, vars)
	if open, next := NextOpen(c.GetOpeningHours(), now); !open {
		if c.GetOutsideHours() == originationv1.OutsideHours_OUTSIDE_HOURS_REFUSE || next.IsZero() {
			msg := "the company is closed now"
			if !next.IsZero() {
				msg += "; it opens at " + next.Format(time.RFC3339)
			}
			return nil, statusError(codes.FailedPrecondition, "CAMPAIGN_CLOSED", msg)
		}
		creq.Campaign.NotBefore = next
	}
	call, err := s.Engine.Create(ctx, creq)
	if err != nil {
		return nil, GRPCError(err)
	}
	return &originationv1.StartBannerCallResponse{Call: ToProto(call, now)}, nil
}
