package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/netguard"
)

// Limits of a subscription's settings.
const (
	DefaultTimeoutMS      = 10000
	MinTimeoutMS          = 1000
	MaxTimeoutMS          = 30000
	DefaultMaxConcurrency = 16
	MaxMaxConcurrency     = 64
	maxDescription        = 200
	maxCampaigns          = 100
	maxEmails             = 10
	defaultDeliveryPage   = 100
	maxDeliveryPage       = 500
	defaultWebhookPage    = 50
	maxWebhookPage        = 100
)

// Server serves WebhookService and NotificationService.
type Server struct {
	webhookv1.UnimplementedWebhookServiceServer
	st    *Store
	guard *netguard.Guard
	log   *slog.Logger
	// changed is told an account's subscriptions changed.
	changed func(account string)
	// redelivered is told deliveries are due again.
	redelivered   func()
	maxPerAccount int
	now           func() time.Time
}

// Register adds both services.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	webhookv1.RegisterWebhookServiceServer(r, s)
	webhookv1.RegisterNotificationServiceServer(r, &notificationServer{st: s.st, now: s.now})
}

func toProto(s *Subscription) *webhookv1.Webhook {
	w := &webhookv1.Webhook{
		Id: s.ID, Url: s.URL, Format: formatOf(s.Format), EventTypes: s.EventTypes, CampaignIds: s.CampaignIDs,
		Enabled: &s.Enabled, Description: s.Description, TimeoutMs: int32(s.TimeoutMS), MaxConcurrency: int32(s.MaxConcurrency),
		TimeZone: s.TimeZone, DisabledReason: s.DisabledReason,
		CreatedAt: timestamppb.New(s.CreatedAt), UpdatedAt: timestamppb.New(s.UpdatedAt),
	}
	if s.FailingSince != nil {
		w.FailingSince = timestamppb.New(*s.FailingSince)
	}
	return w
}

// checkURL validates a destination with the guard, as the service's errors.
func (s *Server) checkURL(ctx context.Context, raw string) error {
	if raw == "" {
		return ErrInvalidURL.WithMsg("url is required")
	}
	_, err := s.guard.CheckURL(ctx, raw)
	var ge *netguard.Error
	if !errors.As(err, &ge) {
		return err
	}
	switch ge.Reason {
	case netguard.ReasonDestinationNotAllowed:
		return ErrDestinationNotAllowed.WithMsg(ge.Msg)
	case netguard.ReasonUnresolvableHost:
		return ErrUnresolvableHost.WithMsg(ge.Msg)
	}
	return ErrInvalidURL.WithMsg(ge.Msg)
}

// validate checks and normalizes a subscription's settings (not its URL).
func validate(s *Subscription) error {
	switch s.Format {
	case webhookv1.WebhookFormat_WEBHOOK_FORMAT_UNSPECIFIED:
		s.Format = webhookv1.WebhookFormat_WEBHOOK_FORMAT_NATIVE
	case webhookv1.WebhookFormat_WEBHOOK_FORMAT_NATIVE, webhookv1.WebhookFormat_WEBHOOK_FORMAT_CARRIER:
	default:
		return ErrInvalidArgument.WithMsg(fmt.Sprintf("format %d is not a WebhookFormat", s.Format))
	}
	var types []eventsv1.EventType
	for _, t := range s.EventTypes {
		if _, ok := eventsv1.EventType_name[int32(t)]; !ok || t == eventsv1.EventType_EVENT_TYPE_UNSPECIFIED {
			return ErrInvalidArgument.WithMsg(fmt.Sprintf("event_types: %v is not an event type", t))
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	s.EventTypes = types
	if len(types) > 0 && s.Format == webhookv1.WebhookFormat_WEBHOOK_FORMAT_CARRIER {
		return ErrInvalidArgument.WithMsg("event_types apply to the native format; the carrier format always sends callStart and callEnd")
	}
	if len(s.CampaignIDs) > maxCampaigns {
		return ErrInvalidArgument.WithMsg(fmt.Sprintf("at most %d campaign_ids", maxCampaigns))
	}
	var campaigns []string
	for _, c := range s.CampaignIDs {
		if c == "" || len(c) > 100 || strings.ContainsAny(c, " \t\r\n") {
			return ErrInvalidArgument.WithMsg(fmt.Sprintf("campaign_ids: %q is not a campaign id", c))
		}
		if !slices.Contains(campaigns, c) {
			campaigns = append(campaigns, c)
		}
	}
	s.CampaignIDs = campaigns
	if len([]rune(s.Description)) > maxDescription || strings.ContainsAny(s.Description, "\r\n\x00") {
		return ErrInvalidArgument.WithMsg(fmt.Sprintf("description is one line of at most %d characters", maxDescription))
	}
	switch {
	case s.TimeoutMS == 0:
		s.TimeoutMS = DefaultTimeoutMS
	case s.TimeoutMS < MinTimeoutMS || s.TimeoutMS > MaxTimeoutMS:
		return ErrInvalidArgument.WithMsg(fmt.Sprintf("timeout_ms is %d to %d", MinTimeoutMS, MaxTimeoutMS))
	}
	switch {
	case s.MaxConcurrency == 0:
		s.MaxConcurrency = DefaultMaxConcurrency
	case s.MaxConcurrency < 1 || s.MaxConcurrency > MaxMaxConcurrency:
		return ErrInvalidArgument.WithMsg(fmt.Sprintf("max_concurrency is 1 to %d", MaxMaxConcurrency))
	}
	return checkTimeZone(s.TimeZone)
}

func checkTimeZone(tz string) error {
	if tz == "" {
		return nil
	}
	if strings.Contains(tz, "..") || strings.HasPrefix(tz, "/") {
		return ErrInvalidTimeZone.WithMsg(fmt.Sprintf("time zone %q: use an IANA name such as Europe/Madrid", tz))
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return ErrInvalidTimeZone.WithMsg(fmt.Sprintf("time zone %q: use an IANA name such as Europe/Madrid", tz))
	}
	return nil
}

// CreateWebhook subscribes a URL.
func (s *Server) CreateWebhook(ctx context.Context, req *webhookv1.CreateWebhookRequest) (*webhookv1.CreateWebhookResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetWebhook()
	now := s.now().UTC().Truncate(time.Microsecond)
	sub := &Subscription{
		ID: ids.NewV7(), AccountID: account, URL: strings.TrimSpace(in.GetUrl()), Format: in.GetFormat(),
		EventTypes: in.GetEventTypes(), CampaignIDs: in.GetCampaignIds(), Enabled: in.Enabled == nil || in.GetEnabled(),
		Description: in.GetDescription(), TimeoutMS: int(in.GetTimeoutMs()), MaxConcurrency: int(in.GetMaxConcurrency()),
		TimeZone: in.GetTimeZone(), Secret: req.GetSecret(), CreatedAt: now, UpdatedAt: now,
	}
	if err := validate(sub); err != nil {
		return nil, err
	}
	if err := s.checkURL(ctx, sub.URL); err != nil {
		return nil, err
	}
	if sub.Secret == "" {
		sub.Secret = NewSecret()
	} else if _, ok := parseSecret(sub.Secret); !ok {
		return nil, ErrInvalidSecret.WithMsg(fmt.Sprintf("secret is %q followed by the base64 of %d to %d bytes", secretPrefix, minSecretBytes, maxSecretBytes))
	}
	if err := s.st.CreateSubscription(ctx, sub, s.maxPerAccount); err != nil {
		return nil, err
	}
	s.changed(account)
	s.log.Info("webhook created", "account_id", account, "webhook_id", sub.ID, "format", sub.Format.String())
	return &webhookv1.CreateWebhookResponse{Webhook: toProto(sub), Secret: sub.Secret}, nil
}

// GetWebhook returns one subscription.
func (s *Server) GetWebhook(ctx context.Context, req *webhookv1.GetWebhookRequest) (*webhookv1.GetWebhookResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	sub, err := s.st.Subscription(ctx, account, req.GetId())
	if err != nil {
		return nil, err
	}
	return &webhookv1.GetWebhookResponse{Webhook: toProto(sub)}, nil
}

// ListWebhooks lists the account's subscriptions.
func (s *Server) ListWebhooks(ctx context.Context, req *webhookv1.ListWebhooksRequest) (*webhookv1.ListWebhooksResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize(), defaultWebhookPage, maxWebhookPage)
	if err != nil {
		return nil, err
	}
	subs, next, err := s.st.Subscriptions(ctx, account, size, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &webhookv1.ListWebhooksResponse{NextPageToken: next}
	for _, sub := range subs {
		resp.Webhooks = append(resp.Webhooks, toProto(sub))
	}
	return resp, nil
}

func pageSize(n int32, def, max int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || int(n) > max:
		return 0, ErrInvalidArgument.WithMsg(fmt.Sprintf("page_size is 0 to %d", max))
	}
	return int(n), nil
}

// UpdateWebhook changes a subscription.
func (s *Server) UpdateWebhook(ctx context.Context, req *webhookv1.UpdateWebhookRequest) (*webhookv1.UpdateWebhookResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetWebhook()
	sub, err := s.st.Subscription(ctx, account, in.GetId())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = setFields(in)
	}
	urlChanged := false
	for _, p := range paths {
		switch p {
		case "url":
			sub.URL, urlChanged = strings.TrimSpace(in.GetUrl()), true
		case "format":
			sub.Format = in.GetFormat()
		case "event_types":
			sub.EventTypes = in.GetEventTypes()
		case "campaign_ids":
			sub.CampaignIDs = in.GetCampaignIds()
		case "enabled":
			sub.Enabled = in.GetEnabled()
		case "description":
			sub.Description = in.GetDescription()
		case "timeout_ms":
			sub.TimeoutMS = int(in.GetTimeoutMs())
		case "max_concurrency":
			sub.MaxConcurrency = int(in.GetMaxConcurrency())
		case "time_zone":
			sub.TimeZone = in.GetTimeZone()
		case "id", "created_at", "updated_at", "disabled_reason", "failing_since":
			// identity or output only: grpc-gateway may list them
		default:
			return nil, ErrInvalidArgument.WithMsg("update_mask: " + p + " is not a field of Webhook")
		}
	}
	if err := validate(sub); err != nil {
		return nil, err
	}
	if urlChanged {
		if err := s.checkURL(ctx, sub.URL); err != nil {
			return nil, err
		}
	}
	sub.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
	if err := s.st.UpdateSubscription(ctx, sub); err != nil {
		return nil, err
	}
	s.changed(account)
	if sub.Enabled {
		s.redelivered()
	}
	return &webhookv1.UpdateWebhookResponse{Webhook: toProto(sub)}, nil
}

// setFields are the fields of w set to a non-zero value (and enabled when
// present): what an update without a mask changes.
func setFields(w *webhookv1.Webhook) []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(w.GetUrl() != "", "url")
	add(w.GetFormat() != webhookv1.WebhookFormat_WEBHOOK_FORMAT_UNSPECIFIED, "format")
	add(len(w.GetEventTypes()) > 0, "event_types")
	add(len(w.GetCampaignIds()) > 0, "campaign_ids")
	add(w.Enabled != nil, "enabled")
	add(w.GetDescription() != "", "description")
	add(w.GetTimeoutMs() != 0, "timeout_ms")
	add(w.GetMaxConcurrency() != 0, "max_concurrency")
	add(w.GetTimeZone() != "", "time_zone")
	return out
}

// DeleteWebhook deletes a subscription.
func (s *Server) DeleteWebhook(ctx context.Context, req *webhookv1.DeleteWebhookRequest) (*webhookv1.DeleteWebhookResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.st.DeleteSubscription(ctx, account, req.GetId()); err != nil {
		return nil, err
	}
	s.changed(account)
	return &webhookv1.DeleteWebhookResponse{}, nil
}

// RotateWebhookSecret replaces the signing secret.
func (s *Server) RotateWebhookSecret(ctx context.Context, req *webhookv1.RotateWebhookSecretRequest) (*webhookv1.RotateWebhookSecretResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	secret := NewSecret()
	if err := s.st.SetSecret(ctx, account, req.GetId(), secret, s.now().UTC()); err != nil {
		return nil, err
	}
	s.changed(account)
	return &webhookv1.RotateWebhookSecretResponse{Secret: secret}, nil
}

// deliveryCursor is where a ListDeliveries page ended.
type deliveryCursor struct {
	T int64  `json:"t"`
	I string `json:"i"`
}

const deliveryColumns = `id, subscription_id, call_id, event_id, event_type, name, payload, state, attempts,
	next_attempt_at, created_at, delivered_at, last_status, last_error, lease_owner IS NOT NULL`

func scanDelivery(row pgx.Row) (*webhookv1.Delivery, error) {
	var (
		d                    webhookv1.Delivery
		et, state            int16
		payload              []byte
		next, created        time.Time
		delivered            *time.Time
		attempts, lastStatus int32
		held                 bool
	)
	err := row.Scan(&d.Id, &d.WebhookId, &d.CallId, &d.EventId, &et, &d.Name, &payload, &state, &attempts,
		&next, &created, &delivered, &lastStatus, &d.LastError, &held)
	if err != nil {
		return nil, err
	}
	d.EventType, d.State, d.Attempts, d.LastStatus = eventsv1.EventType(et), webhookv1.DeliveryState(state), attempts, lastStatus
	d.Payload, d.CreatedAt = string(payload), timestamppb.New(created)
	if state == statePending && !held && next.Before(parked) {
		d.NextAttemptAt = timestamppb.New(next)
	}
	if delivered != nil {
		d.DeliveredAt = timestamppb.New(*delivered)
	}
	return &d, nil
}

// ListDeliveries lists deliveries of a subscription or a call.
func (s *Server) ListDeliveries(ctx context.Context, req *webhookv1.ListDeliveriesRequest) (*webhookv1.ListDeliveriesResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetWebhookId() == "" && req.GetCallId() == "" {
		return nil, ErrInvalidArgument.WithMsg("give webhook_id, call_id or both")
	}
	size, err := pageSize(req.GetPageSize(), defaultDeliveryPage, maxDeliveryPage)
	if err != nil {
		return nil, err
	}
	if _, ok := webhookv1.DeliveryState_name[int32(req.GetState())]; !ok {
		return nil, ErrInvalidArgument.WithMsg("state is not a DeliveryState")
	}
	after := deliveryCursor{T: 1<<62 - 1}
	if tok := req.GetPageToken(); tok != "" {
		if err := decodeCursor(tok, &after); err != nil {
			return nil, err
		}
	}
	if req.GetWebhookId() != "" {
		if _, err := s.st.Subscription(ctx, account, req.GetWebhookId()); err != nil {
			return nil, err
		}
	}
	rows, err := s.st.DB.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook.deliveries
		WHERE account_id = $1 AND ($2 = '' OR subscription_id = $2) AND ($3 = '' OR call_id = $3)
			AND ($4 = 0 OR state = $4) AND (created_at, id) < ($5, $6)
		ORDER BY created_at DESC, id DESC LIMIT $7`,
		account, req.GetWebhookId(), req.GetCallId(), int16(req.GetState()), time.UnixMicro(after.T), after.I, size+1)
	if err != nil {
		return nil, err
	}
	var (
		out  []*webhookv1.Delivery
		last time.Time
	)
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	resp := &webhookv1.ListDeliveriesResponse{}
	if len(out) > size {
		out = out[:size]
		last = out[size-1].GetCreatedAt().AsTime()
		resp.NextPageToken = encodeCursor(deliveryCursor{T: last.UnixMicro(), I: out[size-1].GetId()})
	}
	resp.Deliveries = out
	return resp, nil
}

// GetDelivery returns one delivery with its attempts.
func (s *Server) GetDelivery(ctx context.Context, req *webhookv1.GetDeliveryRequest) (*webhookv1.GetDeliveryResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.delivery(ctx, account, req.GetWebhookId(), req.GetId())
	if err != nil {
		return nil, err
	}
	rows, err := s.st.DB.Query(ctx, `SELECT number, started_at, latency_ms, status, success, error, response_excerpt
		FROM webhook.attempts WHERE delivery_id = $1 ORDER BY number`, d.GetId())
	if err != nil {
		return nil, err
	}
	var (
		a       webhookv1.DeliveryAttempt
		started time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&a.Number, &started, &a.LatencyMs, &a.Status, &a.Success, &a.Error, &a.ResponseExcerpt}, func() error {
		cp := &webhookv1.DeliveryAttempt{Number: a.Number, StartedAt: timestamppb.New(started), LatencyMs: a.LatencyMs,
			Status: a.Status, Success: a.Success, Error: a.Error, ResponseExcerpt: a.ResponseExcerpt}
		d.AttemptLog = append(d.AttemptLog, cp)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &webhookv1.GetDeliveryResponse{Delivery: d}, nil
}

func (s *Server) delivery(ctx context.Context, account, webhook, id string) (*webhookv1.Delivery, error) {
	d, err := scanDelivery(s.st.DB.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook.deliveries
		WHERE account_id = $1 AND subscription_id = $2 AND id = $3`, account, webhook, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrDeliveryNotFound
	}
	return d, err
}

// ErrWebhookDisabled refuses a redelivery to a disabled subscription.
var ErrWebhookDisabled = newError(codes.FailedPrecondition, "WEBHOOK_DISABLED", "the webhook is disabled: enable it first")

func (s *Server) enabledSubscription(ctx context.Context, account, id string) error {
	sub, err := s.st.Subscription(ctx, account, id)
	if err != nil {
		return err
	}
	if !sub.Enabled {
		return ErrWebhookDisabled
	}
	return nil
}

// RedeliverDelivery sends one delivery again.
func (s *Server) RedeliverDelivery(ctx context.Context, req *webhookv1.RedeliverDeliveryRequest) (*webhookv1.RedeliverDeliveryResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.enabledSubscription(ctx, account, req.GetWebhookId()); err != nil {
		return nil, err
	}
	tag, err := s.st.DB.Exec(ctx, `UPDATE webhook.deliveries SET state = 1, step = 0, next_attempt_at = now(), lease_owner = NULL
		WHERE account_id = $1 AND subscription_id = $2 AND id = $3`, account, req.GetWebhookId(), req.GetId())
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return nil, ErrDeliveryNotFound
	}
	s.redelivered()
	d, err := s.delivery(ctx, account, req.GetWebhookId(), req.GetId())
	if err != nil {
		return nil, err
	}
	return &webhookv1.RedeliverDeliveryResponse{Delivery: d}, nil
}

// RedeliverDeliveries sends a time range of deliveries again.
func (s *Server) RedeliverDeliveries(ctx context.Context, req *webhookv1.RedeliverDeliveriesRequest) (*webhookv1.RedeliverDeliveriesResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetSince() == nil {
		return nil, ErrInvalidRange.WithMsg("since is required")
	}
	since, until := req.GetSince().AsTime(), s.now()
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	if !since.Before(until) {
		return nil, ErrInvalidRange.WithMsg("since must be before until")
	}
	if err := s.enabledSubscription(ctx, account, req.GetWebhookId()); err != nil {
		return nil, err
	}
	tag, err := s.st.DB.Exec(ctx, `UPDATE webhook.deliveries SET state = 1, step = 0, next_attempt_at = now(), lease_owner = NULL
		WHERE account_id = $1 AND subscription_id = $2 AND created_at >= $3 AND created_at < $4
			AND (state = 3 OR ($5 AND state = 2))`, account, req.GetWebhookId(), since, until, req.GetAll())
	if err != nil {
		return nil, err
	}
	s.redelivered()
	return &webhookv1.RedeliverDeliveriesResponse{Count: int32(tag.RowsAffected())}, nil
}

// notificationServer serves NotificationService.
type notificationServer struct {
	webhookv1.UnimplementedNotificationServiceServer
	st  *Store
	now func() time.Time
}

func settingsProto(s Settings) *webhookv1.NotificationSettings {
	out := &webhookv1.NotificationSettings{Emails: s.Emails, TimeZone: s.TimeZone}
	if !s.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(s.UpdatedAt)
	}
	return out
}

// GetNotificationSettings returns the account's settings.
func (n *notificationServer) GetNotificationSettings(ctx context.Context, _ *webhookv1.GetNotificationSettingsRequest) (*webhookv1.GetNotificationSettingsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	s, err := n.st.Settings(ctx, n.st.DB, account)
	if err != nil {
		return nil, err
	}
	return &webhookv1.GetNotificationSettingsResponse{Settings: settingsProto(s)}, nil
}

// UpdateNotificationSettings replaces the account's settings.
func (n *notificationServer) UpdateNotificationSettings(ctx context.Context, req *webhookv1.UpdateNotificationSettingsRequest) (*webhookv1.UpdateNotificationSettingsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetSettings()
	if len(in.GetEmails()) > maxEmails {
		return nil, ErrInvalidEmail.WithMsg(fmt.Sprintf("at most %d emails", maxEmails))
	}
	s := Settings{TimeZone: in.GetTimeZone(), UpdatedAt: n.now().UTC().Truncate(time.Microsecond)}
	for _, e := range in.GetEmails() {
		a, err := mail.ParseAddress(e)
		if err != nil || strings.ContainsAny(e, "\r\n") || a.Name != "" {
			return nil, ErrInvalidEmail.WithMsg(fmt.Sprintf("%q is not an email address (give the bare address, e.g. ops@example.com)", e))
		}
		if !slices.Contains(s.Emails, a.Address) {
			s.Emails = append(s.Emails, a.Address)
		}
	}
	if err := checkTimeZone(s.TimeZone); err != nil {
		return nil, err
	}
	if err := n.st.SetSettings(ctx, account, s); err != nil {
		return nil, err
	}
	return &webhookv1.UpdateNotificationSettingsResponse{Settings: settingsProto(s)}, nil
}
