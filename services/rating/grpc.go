package rating

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/rating/direction"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Metadata the gateway sets on every call it forwards, after
// authenticating the request; services trust them because they are only
// reachable from inside the cluster.
const (
	// AccountHeader carries the authenticated account's id.
	AccountHeader = "ringback-account-id"
	// RoleHeader is "operator" for the installation's operator token.
	RoleHeader = "ringback-role"
)

// caller is who a request acts for.
type caller struct {
	operator bool
	account  string
}

func callerFrom(ctx context.Context) (caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var c caller
	if v := md.Get(RoleHeader); len(v) == 1 && v[0] == "operator" {
		c.operator = true
	}
	if v := md.Get(AccountHeader); len(v) == 1 {
		c.account = v[0]
	}
	if !c.operator && c.account == "" {
		return c, ErrUnauthenticated
	}
	return c, nil
}

// mayRead: the operator, or the account itself.
func (c caller) mayRead(account string) error {
	if c.operator || (account != "" && c.account == account) {
		return nil
	}
	return errorf(ErrPermission, "an account's key may only read its own billing")
}

func requireOperator(ctx context.Context) error {
	c, err := callerFrom(ctx)
	if err != nil {
		return err
	}
	if !c.operator {
		return errorf(ErrPermission, "only the installation's operator may do this")
	}
	return nil
}

// Server serves rating's gRPC services.
type Server struct {
	ratingv1.UnimplementedRatingServiceServer
	ratingv1.UnimplementedTariffServiceServer
	ratingv1.UnimplementedBillingServiceServer
	ratingv1.UnimplementedBlocklistServiceServer

	Rater *Rater
	Store *Store
	// Notify tells the other replicas about a change (nil: single replica).
	Notify func(Change)
	// ImportLimit bounds an import's rows (0: tariffcsv's default).
	ImportLimit int
	Log         *slog.Logger
}

// Register adds the four services.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	ratingv1.RegisterRatingServiceServer(r, s)
	ratingv1.RegisterTariffServiceServer(r, s)
	ratingv1.RegisterBillingServiceServer(r, s)
	ratingv1.RegisterBlocklistServiceServer(r, s)
}

func (s *Server) notify(c Change) {
	if s.Notify != nil {
		s.Notify(c)
	}
}

func (s *Server) fail(method string, err error) error {
	out := grpcError(err)
	var e *Error
	if !errors.As(err, &e) && !errors.Is(err, context.Canceled) {
		s.Log.Error("request failed", "method", method, "err", err)
	}
	return out
}

// Authorize implements RatingService.
func (s *Server) Authorize(ctx context.Context, req *ratingv1.AuthorizeRequest) (*ratingv1.AuthorizeResponse, error) {
	if req.GetAccountId() == "" {
		return nil, errorf(ErrInvalid, "account_id is required")
	}
	d, err := s.Rater.Authorize(ctx, req.GetAccountId(), req.GetNumber(), req.GetCampaignId())
	if err != nil {
		return nil, s.fail("Authorize", err)
	}
	return &ratingv1.AuthorizeResponse{Rate: appliedRate(d), MaxDurationS: d.MaxSecs, Direction: DirectionProto(d.Direction)}, nil
}

// Reserve implements RatingService.
func (s *Server) Reserve(ctx context.Context, req *ratingv1.ReserveRequest) (*ratingv1.ReserveResponse, error) {
	if req.GetAccountId() == "" || req.GetCallId() == "" || req.GetLeg() == "" || req.GetRate() == nil {
		return nil, errorf(ErrInvalid, "account_id, call_id, leg and rate are required")
	}
	res, err := s.Rater.Reserve(ctx, req.GetAccountId(), req.GetCallId(), req.GetLeg(), BillingRate(req.GetRate()), req.GetMaxDurationS())
	if err != nil {
		return nil, s.fail("Reserve", err)
	}
	return &ratingv1.ReserveResponse{GrantedS: res.GrantedSeconds, ReservedMicros: res.AmountMicros}, nil
}

// LookupRate implements RatingService.
func (s *Server) LookupRate(ctx context.Context, req *ratingv1.LookupRateRequest) (*ratingv1.LookupRateResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if c.account == "" {
		return nil, errorf(ErrPermission, "rates are looked up with an account's key")
	}
	d, err := s.Rater.Authorize(ctx, c.account, req.GetNumber(), req.GetCampaignId())
	if err != nil {
		return nil, s.fail("LookupRate", err)
	}
	return &ratingv1.LookupRateResponse{Rate: appliedRate(d), MaxDurationS: d.MaxSecs, Direction: DirectionProto(d.Direction), Number: d.Number}, nil
}

// GetDirection implements RatingService.
func (s *Server) GetDirection(ctx context.Context, req *ratingv1.GetDirectionRequest) (*ratingv1.GetDirectionResponse, error) {
	if _, err := callerFrom(ctx); err != nil {
		return nil, err
	}
	e164, _, err := normalize(req.GetNumber())
	if err != nil {
		return nil, err
	}
	return &ratingv1.GetDirectionResponse{Direction: DirectionProto(s.Rater.dir.Lookup(e164)), Number: e164}, nil
}

var currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)

func checkName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 200 {
		return errorf(ErrInvalid, "name is required (at most 200 characters)")
	}
	return nil
}

// CreateTariff implements TariffService.
func (s *Server) CreateTariff(ctx context.Context, req *ratingv1.CreateTariffRequest) (*ratingv1.CreateTariffResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	t := req.GetTariff()
	if err := checkName(t.GetName()); err != nil {
		return nil, err
	}
	if !currencyRe.MatchString(t.GetCurrency()) {
		return nil, errorf(ErrInvalid, "currency must be an ISO 4217 code such as USD or EUR")
	}
	row, err := s.Store.CreateTariff(ctx, strings.TrimSpace(t.GetName()), t.GetDescription(), t.GetCurrency())
	if err != nil {
		return nil, s.fail("CreateTariff", err)
	}
	s.notify(Change{Kind: "tariff", ID: row.ID})
	return &ratingv1.CreateTariffResponse{Tariff: tariffProto(row)}, nil
}

// GetTariff implements TariffService.
func (s *Server) GetTariff(ctx context.Context, req *ratingv1.GetTariffRequest) (*ratingv1.GetTariffResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	row, err := s.Store.GetTariff(ctx, req.GetId())
	if err != nil {
		return nil, s.fail("GetTariff", err)
	}
	return &ratingv1.GetTariffResponse{Tariff: tariffProto(row)}, nil
}

// ListTariffs implements TariffService.
func (s *Server) ListTariffs(ctx context.Context, req *ratingv1.ListTariffsRequest) (*ratingv1.ListTariffsResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize())
	after, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	rows, err := s.Store.ListTariffs(ctx, after, size+1)
	if err != nil {
		return nil, s.fail("ListTariffs", err)
	}
	resp := &ratingv1.ListTariffsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = encodeToken(rows[size-1].Name)
	}
	for _, r := range rows {
		resp.Tariffs = append(resp.Tariffs, tariffProto(r))
	}
	return resp, nil
}

// UpdateTariff implements TariffService.
func (s *Server) UpdateTariff(ctx context.Context, req *ratingv1.UpdateTariffRequest) (*ratingv1.UpdateTariffResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	t := req.GetTariff()
	if t.GetName() != "" {
		if err := checkName(t.GetName()); err != nil {
			return nil, err
		}
	}
	if t.GetCurrency() != "" {
		cur, err := s.Store.GetTariff(ctx, t.GetId())
		if err != nil {
			return nil, s.fail("UpdateTariff", err)
		}
		if cur.Currency != t.GetCurrency() {
			return nil, errorf(ErrInvalid, "a tariff's currency cannot change; create another tariff")
		}
	}
	row, err := s.Store.UpdateTariff(ctx, t.GetId(), strings.TrimSpace(t.GetName()), t.GetDescription())
	if err != nil {
		return nil, s.fail("UpdateTariff", err)
	}
	return &ratingv1.UpdateTariffResponse{Tariff: tariffProto(row)}, nil
}

// DeleteTariff implements TariffService.
func (s *Server) DeleteTariff(ctx context.Context, req *ratingv1.DeleteTariffRequest) (*ratingv1.DeleteTariffResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	if err := s.Store.DeleteTariff(ctx, req.GetId()); err != nil {
		return nil, s.fail("DeleteTariff", err)
	}
	s.Rater.book.Remove(req.GetId())
	s.notify(Change{Kind: "tariff", ID: req.GetId()})
	return &ratingv1.DeleteTariffResponse{}, nil
}

// ListRates implements TariffService.
func (s *Server) ListRates(ctx context.Context, req *ratingv1.ListRatesRequest) (*ratingv1.ListRatesResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	if strings.Trim(req.GetPrefix(), "0123456789") != "" {
		return nil, errorf(ErrInvalid, "prefix must be digits")
	}
	size := pageSize(req.GetPageSize())
	tok, err := decodeToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	afterPrefix, afterFrom := "", time.Time{}
	if tok != "" {
		p, f, _ := strings.Cut(tok, "|")
		afterPrefix = p
		if f != "" {
			ns, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return nil, errorf(ErrInvalid, "bad page_token")
			}
			afterFrom = time.Unix(0, ns).UTC()
		}
	}
	rows, err := s.Store.ListRates(ctx, req.GetTariffId(), req.GetPrefix(), afterPrefix, afterFrom, size+1)
	if err != nil {
		return nil, s.fail("ListRates", err)
	}
	resp := &ratingv1.ListRatesResponse{}
	if len(rows) > size {
		rows = rows[:size]
		last := rows[size-1]
		f := ""
		if !last.EffectiveFrom.IsZero() {
			f = strconv.FormatInt(last.EffectiveFrom.UnixNano(), 10)
		}
		resp.NextPageToken = encodeToken(last.Prefix + "|" + f)
	}
	for _, r := range rows {
		resp.Rates = append(resp.Rates, rateProto(r))
	}
	return resp, nil
}

// ImportRates implements TariffService.
func (s *Server) ImportRates(stream grpc.ClientStreamingServer[ratingv1.ImportRatesRequest, ratingv1.ImportRatesResponse]) error {
	ctx := stream.Context()
	if err := requireOperator(ctx); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err == io.EOF {
		return errorf(ErrInvalid, "no request: send the tariff id and the CSV")
	}
	if err != nil {
		return err
	}
	id := first.GetTariffId()
	tariff, err := s.Store.GetTariff(ctx, id)
	if err != nil {
		return s.fail("ImportRates", err)
	}
	mode := ImportReplace
	if first.GetMode() == ratingv1.ImportMode_IMPORT_MODE_MERGE {
		mode = ImportMerge
	}
	// The file is parsed while it arrives: a pipe feeds the parser.
	pr, pw := io.Pipe()
	go func() {
		msg := first
		for {
			if len(msg.GetChunk()) > 0 {
				if _, err := pw.Write(msg.GetChunk()); err != nil {
					return
				}
			}
			var err error
			msg, err = stream.Recv()
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	start := time.Now()
	res, err := tariffcsv.Parse(pr, tariffcsv.Options{MaxRows: s.ImportLimit})
	pr.Close()
	if err != nil {
		return s.fail("ImportRates", fmt.Errorf("read the file: %w", err))
	}
	parsed := time.Since(start)
	if res.ErrorCount > 0 {
		resp := &ratingv1.ImportRatesResponse{Tariff: tariffProto(tariff), ErrorCount: int32(res.ErrorCount)}
		for _, e := range res.Errors {
			resp.Errors = append(resp.Errors, &ratingv1.RowError{Line: int32(e.Line), Column: e.Column, Reason: e.Reason, Message: e.Message})
		}
		return stream.SendAndClose(resp)
	}
	row, err := s.Store.ImportRates(ctx, id, mode, res.Rates)
	if err != nil {
		return s.fail("ImportRates", err)
	}
	stored := time.Since(start)
	if mode == ImportReplace {
		err = s.Rater.PutCompiled(row, res.Rates)
	} else {
		err = s.Rater.LoadTariff(ctx, id)
	}
	if err != nil {
		return s.fail("ImportRates", err)
	}
	s.notify(Change{Kind: "tariff", ID: id, Version: row.Version})
	s.Log.Info("rates imported", "tariff_id", id, "rates", len(res.Rates), "mode", mode,
		"parse", parsed, "store", stored-parsed, "swap", time.Since(start)-stored)
	return stream.SendAndClose(&ratingv1.ImportRatesResponse{Imported: int64(len(res.Rates)), Tariff: tariffProto(row)})
}

// ExportRates implements TariffService.
func (s *Server) ExportRates(req *ratingv1.ExportRatesRequest, stream grpc.ServerStreamingServer[ratingv1.ExportRatesResponse]) error {
	ctx := stream.Context()
	if err := requireOperator(ctx); err != nil {
		return err
	}
	if _, err := s.Store.GetTariff(ctx, req.GetTariffId()); err != nil {
		return s.fail("ExportRates", err)
	}
	w := bufio.NewWriterSize(chunkWriter{stream}, 64<<10)
	errStop := errors.New("stop")
	seq := func(yield func(tariffcsv.Rate, error) bool) {
		err := s.Store.ExportRates(ctx, req.GetTariffId(), func(r RateRow) error {
			if !yield(r, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(tariffcsv.Rate{}, err)
		}
	}
	if err := tariffcsv.Write(w, seq); err != nil {
		return s.fail("ExportRates", err)
	}
	if err := w.Flush(); err != nil {
		return s.fail("ExportRates", err)
	}
	return nil
}

type chunkWriter struct {
	stream grpc.ServerStreamingServer[ratingv1.ExportRatesResponse]
}

func (c chunkWriter) Write(p []byte) (int, error) {
	// The buffer is reused after Write returns: send a copy.
	if err := c.stream.Send(&ratingv1.ExportRatesResponse{Chunk: append([]byte(nil), p...)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// GetBilling implements BillingService.
func (s *Server) GetBilling(ctx context.Context, req *ratingv1.GetBillingRequest) (*ratingv1.GetBillingResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.mayRead(req.GetAccountId()); err != nil {
		return nil, err
	}
	b, err := s.Store.GetBilling(ctx, req.GetAccountId())
	if err != nil {
		return nil, s.fail("GetBilling", err)
	}
	return &ratingv1.GetBillingResponse{Billing: billingProto(b)}, nil
}

// UpdateBilling implements BillingService.
func (s *Server) UpdateBilling(ctx context.Context, req *ratingv1.UpdateBillingRequest) (*ratingv1.UpdateBillingResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	in := req.GetBilling()
	if in.GetAccountId() == "" {
		return nil, errorf(ErrInvalid, "billing.account_id is required")
	}
	var ch BillingChange
	switch in.GetTariffId() {
	case "":
	case "-":
		none := ""
		ch.TariffID = &none
	default:
		t := in.GetTariffId()
		ch.TariffID = &t
	}
	if len(in.GetCampaignTariffs()) > 0 {
		ch.Campaigns = in.GetCampaignTariffs()
	}
	switch in.GetMode() {
	case ratingv1.BillingMode_BILLING_MODE_PREPAID:
		m := ModePrepaid
		ch.Mode = &m
	case ratingv1.BillingMode_BILLING_MODE_POSTPAID:
		m := ModePostpaid
		ch.Mode = &m
	}
	b, err := s.Store.UpdateBilling(ctx, in.GetAccountId(), ch)
	if err != nil {
		return nil, s.fail("UpdateBilling", err)
	}
	s.Rater.Forget(in.GetAccountId())
	s.notify(Change{Kind: "billing", ID: in.GetAccountId()})
	return &ratingv1.UpdateBillingResponse{Billing: billingProto(b)}, nil
}

// TopUp implements BillingService.
func (s *Server) TopUp(ctx context.Context, req *ratingv1.TopUpRequest) (*ratingv1.TopUpResponse, error) {
	if err := requireOperator(ctx); err != nil {
		return nil, err
	}
	if req.GetAccountId() == "" || req.GetAmountMicros() == 0 || strings.TrimSpace(req.GetReference()) == "" {
		return nil, errorf(ErrInvalid, "account_id, a non-zero amount_micros and a reference are required")
	}
	if len(req.GetReference()) > 200 || len(req.GetDescription()) > 500 {
		return nil, errorf(ErrInvalid, "reference (200) or description (500 characters) too long")
	}
	b, tr, err := s.Store.TopUp(ctx, req.GetAccountId(), req.GetAmountMicros(), req.GetReference(), req.GetDescription())
	if err != nil {
		return nil, s.fail("TopUp", err)
	}
	s.Rater.Forget(req.GetAccountId())
	s.notify(Change{Kind: "billing", ID: req.GetAccountId()})
	return &ratingv1.TopUpResponse{Billing: billingProto(b), Transaction: transactionProto(tr)}, nil
}

// ListTransactions implements BillingService.
func (s *Server) ListTransactions(ctx context.Context, req *ratingv1.ListTransactionsRequest) (*ratingv1.ListTransactionsResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.mayRead(req.GetAccountId()); err != nil {
		return nil, err
	}
	size := pageSize(req.GetPageSize())
	var before int64
	if t := req.GetPageToken(); t != "" {
		if before, err = strconv.ParseInt(t, 10, 64); err != nil || before <= 0 {
			return nil, errorf(ErrInvalid, "bad page_token")
		}
	}
	rows, err := s.Store.ListTransactions(ctx, req.GetAccountId(), before, size+1)
	if err != nil {
		return nil, s.fail("ListTransactions", err)
	}
	resp := &ratingv1.ListTransactionsResponse{}
	if len(rows) > size {
		rows = rows[:size]
		resp.NextPageToken = strconv.FormatInt(rows[size-1].ID, 10)
	}
	for _, t := range rows {
		resp.Transactions = append(resp.Transactions, transactionProto(t))
	}
	return resp, nil
}

// blockTarget decides which list a blocklist request is about.
func blockTarget(ctx context.Context, account string) (string, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return "", err
	}
	if c.operator {
		return account, nil
	}
	if account != "" && account != c.account {
		return "", errorf(ErrPermission, "an account's key may only manage its own blocklist")
	}
	return c.account, nil
}

// CreateBlockedPrefix implements BlocklistService.
func (s *Server) CreateBlockedPrefix(ctx context.Context, req *ratingv1.CreateBlockedPrefixRequest) (*ratingv1.CreateBlockedPrefixResponse, error) {
	in := req.GetBlockedPrefix()
	account, err := blockTarget(ctx, in.GetAccountId())
	if err != nil {
		return nil, err
	}
	p := strings.TrimPrefix(in.GetPrefix(), "+")
	if p == "" || len(p) > 15 || strings.Trim(p, "0123456789") != "" {
		return nil, errorf(ErrInvalid, "prefix must be 1 to 15 digits")
	}
	if len(in.GetReason()) > 200 {
		return nil, errorf(ErrInvalid, "reason is at most 200 characters")
	}
	b, err := s.Store.CreateBlocked(ctx, Blocked{AccountID: account, Prefix: p, Reason: in.GetReason()})
	if err != nil {
		return nil, s.fail("CreateBlockedPrefix", err)
	}
	if err := s.Rater.ReloadBlocklist(ctx); err != nil {
		return nil, s.fail("CreateBlockedPrefix", err)
	}
	s.notify(Change{Kind: "blocklist"})
	return &ratingv1.CreateBlockedPrefixResponse{BlockedPrefix: blockedProto(*b)}, nil
}

// ListBlockedPrefixes implements BlocklistService.
func (s *Server) ListBlockedPrefixes(ctx context.Context, req *ratingv1.ListBlockedPrefixesRequest) (*ratingv1.ListBlockedPrefixesResponse, error) {
	account, err := blockTarget(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	list, err := s.Store.ListBlocked(ctx, account, false)
	if err != nil {
		return nil, s.fail("ListBlockedPrefixes", err)
	}
	resp := &ratingv1.ListBlockedPrefixesResponse{}
	for _, b := range list {
		resp.BlockedPrefixes = append(resp.BlockedPrefixes, blockedProto(b))
	}
	return resp, nil
}

// DeleteBlockedPrefix implements BlocklistService.
func (s *Server) DeleteBlockedPrefix(ctx context.Context, req *ratingv1.DeleteBlockedPrefixRequest) (*ratingv1.DeleteBlockedPrefixResponse, error) {
	account, err := blockTarget(ctx, req.GetAccountId())
	if err != nil {
		return nil, err
	}
	if err := s.Store.DeleteBlocked(ctx, account, strings.TrimPrefix(req.GetPrefix(), "+")); err != nil {
		return nil, s.fail("DeleteBlockedPrefix", err)
	}
	if err := s.Rater.ReloadBlocklist(ctx); err != nil {
		return nil, s.fail("DeleteBlockedPrefix", err)
	}
	s.notify(Change{Kind: "blocklist"})
	return &ratingv1.DeleteBlockedPrefixResponse{}, nil
}

func pageSize(n int32) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return int(n)
}

func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeToken(t string) (string, error) {
	if t == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return "", errorf(ErrInvalid, "bad page_token")
	}
	return string(b), nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tariffProto(t *TariffRow) *ratingv1.Tariff {
	return &ratingv1.Tariff{Id: t.ID, Name: t.Name, Description: t.Description, Currency: t.Currency,
		RateCount: t.RateCount, Version: t.Version, CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt)}
}

func rateProto(r RateRow) *ratingv1.Rate {
	return &ratingv1.Rate{Prefix: r.Prefix, Destination: r.Destination, RatePerMinuteMicros: r.RatePerMinuteMicros,
		ConnectionFeeMicros: r.ConnectionFeeMicros, MinSeconds: r.MinSeconds, IncrementSeconds: r.IncrementSeconds,
		EffectiveFrom: ts(r.EffectiveFrom)}
}

func appliedRate(d *Decision) *ratingv1.AppliedRate {
	return &ratingv1.AppliedRate{TariffId: d.TariffID, Prefix: d.Rate.Prefix, Destination: d.Rate.Destination,
		RatePerMinuteMicros: d.Rate.PerMinuteMicros, ConnectionFeeMicros: d.Rate.ConnectionFeeMicros,
		MinSeconds: d.Rate.MinSeconds, IncrementSeconds: d.Rate.IncrementSeconds, Currency: d.Currency}
}

// BillingRate is the part of an applied rate that prices a leg.
func BillingRate(r *ratingv1.AppliedRate) billing.Rate {
	return billing.Rate{PerMinuteMicros: r.GetRatePerMinuteMicros(), ConnectionFeeMicros: r.GetConnectionFeeMicros(),
		MinSeconds: r.GetMinSeconds(), IncrementSeconds: r.GetIncrementSeconds()}
}

// DirectionProto converts a Direction.
func DirectionProto(d direction.Direction) *ratingv1.Direction {
	return &ratingv1.Direction{Country: d.Country, CountryName: d.CountryName, Region: d.Region, Carrier: d.Carrier,
		LineType: ratingv1.LineType(ratingv1.LineType_value["LINE_TYPE_"+string(d.LineType)]), TimeZones: d.TimeZones, Valid: d.Valid}
}

func billingProto(b *BillingRow) *ratingv1.Billing {
	mode := ratingv1.BillingMode_BILLING_MODE_POSTPAID
	if b.Prepaid() {
		mode = ratingv1.BillingMode_BILLING_MODE_PREPAID
	}
	return &ratingv1.Billing{AccountId: b.AccountID, TariffId: b.TariffID, CampaignTariffs: b.Campaigns, Mode: mode,
		Currency: b.Currency, BalanceMicros: b.BalanceMicros, ReservedMicros: b.ReservedMicros,
		AvailableMicros: b.BalanceMicros - b.ReservedMicros, UpdatedAt: ts(b.UpdatedAt)}
}

func transactionProto(t *Transaction) *ratingv1.Transaction {
	kind := ratingv1.TransactionKind_TRANSACTION_KIND_TOP_UP
	if t.Kind == "CHARGE" {
		kind = ratingv1.TransactionKind_TRANSACTION_KIND_CHARGE
	}
	return &ratingv1.Transaction{Id: strconv.FormatInt(t.ID, 10), AccountId: t.AccountID, Kind: kind, AmountMicros: t.AmountMicros,
		BalanceAfterMicros: t.BalanceAfterMicros, Reference: t.Reference, Description: t.Description, CallId: t.CallID,
		Leg: t.Leg, BilledS: t.BilledSeconds, CreatedAt: ts(t.CreatedAt)}
}

func blockedProto(b Blocked) *ratingv1.BlockedPrefix {
	return &ratingv1.BlockedPrefix{Prefix: b.Prefix, AccountId: b.AccountID, Reason: b.Reason, CreatedAt: ts(b.CreatedAt)}
}

// notifier returns a Notify function publishing on NATS.
func notifier(publish func(subject string, data []byte) error, log *slog.Logger) func(Change) {
	return func(c Change) {
		data, _ := json.Marshal(c)
		if err := publish(ChangeSubject, data); err != nil {
			log.Warn("notify replicas; they will catch up at their next sync", "kind", c.Kind, "id", c.ID, "err", err)
		}
	}
}
