package dialer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nyaruka/phonenumbers"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/fieldmask"
	"github.com/ringback/ringback/services/internal/ids"
)

// The campaign API: create, read, edit (only CREATED or FINISHED), delete,
// and the spec's status transitions:
//
//	CREATED   -> RUNNING (start)
//	RUNNING   -> PAUSED (pause) -> RUNNING (resume)
//	RUNNING   -> FINISHED (the engine: every record final)
//	RUNNING, PAUSED -> CANCELLED (cancel)
//	FINISHED, CANCELLED -> RUNNING (start: a new run, every record ready again)

var (
	uuidRe         = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	nameRe         = regexp.MustCompile(`^[^\x00-\x1f]{1,100}$`)
	hhmmRe         = regexp.MustCompile(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`)
	announcementRe = regexp.MustCompile(`^[^\s\x00-\x1f'"{}]{1,512}$`)
	settingsJSON   = protojson.MarshalOptions{UseProtoNames: true}
)

// outputOnly are the Campaign fields a client cannot set.
var outputOnly = map[string]bool{"id": true, "account_id": true, "status": true, "progress": true,
	"created_at": true, "started_at": true, "finished_at": true}

const campaignCols = "id, account_id, name, status, settings, run, created_at, started_at, finished_at"

type campaignRow struct {
	c   *dialerv1.Campaign
	run int
}

func scanCampaign(row pgx.Row) (*campaignRow, error) {
	var (
		id, account, name   string
		status              int16
		settings            []byte
		run                 int
		created             time.Time
		started, finishedAt *time.Time
	)
	if err := row.Scan(&id, &account, &name, &status, &settings, &run, &created, &started, &finishedAt); err != nil {
		return nil, err
	}
	c := &dialerv1.Campaign{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(settings, c); err != nil {
		return nil, fmt.Errorf("decode campaign %s: %w", id, err)
	}
	c.Id, c.AccountId, c.Name, c.Status, c.CreatedAt = id, account, name, dialerv1.CampaignStatus(status), timestamppb.New(created)
	if started != nil {
		c.StartedAt = timestamppb.New(*started)
	}
	if finishedAt != nil {
		c.FinishedAt = timestamppb.New(*finishedAt)
	}
	return &campaignRow{c: c, run: run}, nil
}

func settingsOf(c *dialerv1.Campaign) ([]byte, error) {
	s := proto.Clone(c).(*dialerv1.Campaign)
	s.Id, s.AccountId, s.Name, s.Status, s.Progress, s.CreatedAt, s.StartedAt, s.FinishedAt = "", "", "", 0, nil, nil, nil, nil
	return settingsJSON.Marshal(s)
}

func campaignErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return ErrCampaignNotFound
	case errors.As(err, &pe) && pe.Code == "23505":
		return ErrCampaignExists
	}
	return err
}

// load returns one of the account's campaigns.
func (s *Server) load(ctx context.Context, q pgx.Row) (*campaignRow, error) {
	r, err := scanCampaign(q)
	return r, campaignErr(err)
}

func (s *Server) get(ctx context.Context, account, id string) (*campaignRow, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrCampaignNotFound
	}
	return s.load(ctx, s.DB.QueryRow(ctx, `SELECT `+campaignCols+` FROM dialer.campaigns WHERE account_id = $1 AND id = $2`, account, id))
}

// validate checks a campaign's settings and normalizes them.
func (s *Server) validate(ctx context.Context, account string, c *dialerv1.Campaign) error {
	bad := func(format string, a ...any) error { return ErrInvalidArgument.WithMsg(fmt.Sprintf(format, a...)) }
	if !nameRe.MatchString(c.GetName()) {
		return bad("name must be 1-100 printable characters")
	}
	if len(c.GetAccountCode()) > 64 {
		return bad("account_code: at most 64 characters")
	}
	if dc := strings.ToUpper(c.GetDefaultCountry()); dc != "" {
		if phonenumbers.GetCountryCodeForRegion(dc) == 0 {
			return bad("default_country: %q is not an ISO 3166-1 alpha-2 country with a calling code", c.GetDefaultCountry())
		}
		c.DefaultCountry = dc
	}
	if n := c.GetCallerIdNumber(); n != "" {
		e164, err := Normalize(n, c.GetDefaultCountry())
		if err != nil {
			return bad("caller_id_number: %v", err)
		}
		c.CallerIdNumber = e164
	}
	if n := c.GetCallerIdName(); len(n) > 80 || strings.ContainsAny(n, "{}[],'\"|\n\r\x00") {
		return bad("caller_id_name: at most 80 characters, none of {}[],'\"|")
	}
	if m := c.GetMaxConcurrentCalls(); m < 0 || m > 10000 {
		return bad("max_concurrent_calls must be between 0 and 10000")
	}
	if a := c.GetDialAttempts(); a < 0 || a > MaxDialAttempts {
		return bad("dial_attempts must be between 0 and %d", MaxDialAttempts)
	}
	if t := c.GetDialTimeoutMs(); t < 0 || (t > 0 && t < 1000) || t > 300000 {
		return bad("dial_timeout_ms must be 0 (30 s) or between 1000 and 300000")
	}
	ri := c.GetRetryIntervals()
	for name, v := range map[string]int32{"busy_s": ri.GetBusyS(), "no_answer_s": ri.GetNoAnswerS(), "congestion_s": ri.GetCongestionS(),
		"machine_s": ri.GetMachineS(), "failed_s": ri.GetFailedS()} {
		if v < 0 || v > 7*24*3600 {
			return bad("retry_intervals.%s must be between 0 and 604800", name)
		}
	}
	if a := c.GetOnAnswer().GetAnnouncement(); a != "" && !announcementRe.MatchString(a) {
		return bad("on_answer.announcement must be a file path or URL without spaces (at most 512 characters)")
	}
	if err := validateBlast(c.GetOnAnswer()); err != nil {
		return err
	}
	if err := validatePacing(c); err != nil {
		return err
	}
	if ep := c.GetOnAnswer().GetEndpointId(); ep != "" {
		if !uuidRe.MatchString(ep) {
			return bad("on_answer.endpoint_id: %q is not an endpoint id", ep)
		}
		if s.Endpoints != nil {
			out := metadata.NewOutgoingContext(ctx, metadata.Pairs(AccountHeader, account))
			if _, err := s.Endpoints.GetEndpoint(out, &originationv1.GetEndpointRequest{Id: ep}); err != nil {
				return err // origination's NOT_FOUND ENDPOINT_NOT_FOUND, as it is
			}
		}
	}
	if ch := c.GetCallingHours(); ch != nil {
		if len(ch.GetWindows()) == 0 || len(ch.GetWindows()) > 50 {
			return bad("calling_hours: 1 to 50 windows")
		}
		for _, w := range ch.GetWindows() {
			if len(w.GetDays()) == 0 {
				return bad("calling_hours: a window needs days (0 Sunday to 6 Saturday)")
			}
			for _, d := range w.GetDays() {
				if d < 0 || d > 6 {
					return bad("calling_hours: day %d (0 Sunday to 6 Saturday)", d)
				}
			}
			if !hhmmRe.MatchString(w.GetStart()) || !hhmmRe.MatchString(w.GetEnd()) || w.GetEnd() <= w.GetStart() || w.GetStart() == "24:00" {
				return bad("calling_hours: start and end are HH:MM with end after start (got %q-%q)", w.GetStart(), w.GetEnd())
			}
		}
	}
	if st, en := c.GetStartTime(), c.GetEndTime(); st != nil && en != nil && !en.AsTime().After(st.AsTime()) {
		return bad("end_time must be after start_time")
	}
	return nil
}

// validatePacing checks a campaign's pacing: the AGENTS and PREDICTIVE
// modes give answers to agents, so they take no endpoint, announcement or
// options, and need the safe-harbour message.
func validatePacing(c *dialerv1.Campaign) error {
	bad := func(format string, args ...any) error {
		return ErrInvalidArgument.WithMsg(fmt.Sprintf(format, args...))
	}
	p := c.GetPacing()
	if p == nil {
		return nil
	}
	if _, ok := dialerv1.PacingMode_name[int32(p.GetMode())]; !ok {
		return bad("pacing.mode %d is not a mode", p.GetMode())
	}
	if _, ok := dialerv1.AdaptMethod_name[int32(p.GetMethod())]; !ok {
		return bad("pacing.method %d is not a method", p.GetMethod())
	}
	if m := p.GetDialMultiplier(); m != 0 && (m < 1 || m > 10) {
		return bad("pacing.dial_multiplier must be 0 (the global multiplier) or between 1 and 10")
	}
	if t := p.GetAbandonTarget(); t < 0 || t > 0.10 {
		return bad("pacing.abandon_target must be 0 (0.03) or at most 0.10")
	}
	if l := p.GetMaxDialLevel(); l != 0 && (l < 1 || l > 10) {
		return bad("pacing.max_dial_level must be 0 (4.0) or between 1 and 10")
	}
	if w := p.GetAgentWaitMs(); w != 0 && (w < 100 || w > 2000) {
		return bad("pacing.agent_wait_ms must be 0 (2000) or between 100 and 2000")
	}
	if r := p.GetReleaseAfterS(); r != 0 && r != -1 && (r < 15 || r > 120) {
		return bad("pacing.release_after_s must be 0 (15), -1 (never) or between 15 and 120: the regulators' least ring is 15 s")
	}
	if l := p.GetAbandonLockoutS(); l < 0 || l > 30*24*3600 {
		return bad("pacing.abandon_lockout_s must be 0 (259200) or at most 2592000")
	}
	if e := p.GetShiftEnd(); e != "" && (!hhmmRe.MatchString(e) || e == "00:00") {
		return bad("pacing.shift_end must be HH:MM")
	}
	if z := p.GetShiftTimeZone(); z != "" && zoneOf(z) == nil {
		return bad("pacing.shift_time_zone %q: use an IANA time zone such as Europe/Madrid", z)
	}
	if p.GetMethod() == dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED && p.GetShiftTimeZone() == "" {
		if zones := callingCodeZones(phonenumbers.GetCountryCodeForRegion(c.GetDefaultCountry())); !sameClock(zones) {
			return bad("pacing.shift_time_zone is required for a TAPERED campaign whose default country (%q) does not tell the shift's zone: it has none or several", c.GetDefaultCountry())
		}
	}
	paced := p.GetMode() == dialerv1.PacingMode_PACING_MODE_AGENTS || p.GetMode() == dialerv1.PacingMode_PACING_MODE_PREDICTIVE
	if !paced {
		return nil
	}
	if c.GetOnAnswer().GetAgentQueue() != nil {
		// A BLAST's queue: AGENTS paces its dials by the agents free (times
		// the multiplier); nobody is promised an agent at the answer, so
		// there is no abandonment to predict nor a safe harbour to play.
		if p.GetMode() != dialerv1.PacingMode_PACING_MODE_AGENTS {
			return bad("a BLAST with agent_queue is paced FIXED or AGENTS: PREDICTIVE promises every answer an agent")
		}
		if p.GetSafeHarbour() != "" {
			return bad("pacing.safe_harbour is for answers promised an agent: a BLAST's queue plays on_answer.agent_queue.no_agent_message")
		}
		return nil
	}
	if h := p.GetSafeHarbour(); h == "" || !announcementRe.MatchString(h) || strings.Contains(h, ";") {
		return bad("pacing.safe_harbour is required in AGENTS and PREDICTIVE modes: a file path or URL without spaces or ';'")
	}
	a := c.GetOnAnswer()
	if a.GetEndpointId() != "" || a.GetAnnouncement() != "" || len(a.GetOptions()) > 0 {
		return bad("AGENTS and PREDICTIVE campaigns give answers to their agents: no on_answer endpoint_id, announcement or options")
	}
	return nil
}

// validateBlast checks a campaign's BLAST options and machine detection.
func validateBlast(a *dialerv1.OnAnswer) error {
	bad := func(format string, args ...any) error {
		return ErrInvalidArgument.WithMsg(fmt.Sprintf(format, args...))
	}
	connects := false
	if opts := a.GetOptions(); len(opts) > 0 {
		if a.GetAnnouncement() == "" {
			return bad("on_answer.options need an announcement (their prompt)")
		}
		seen := map[string]bool{}
		for _, o := range opts {
			d := o.GetDigit()
			if len(d) != 1 || !strings.Contains("0123456789*#", d) {
				return bad("on_answer.options: digit %q is not one of 0-9, * and #", d)
			}
			if seen[d] {
				return bad("on_answer.options: digit %s is used twice", d)
			}
			seen[d] = true
			switch o.GetAction() {
			case dialerv1.BlastAction_BLAST_ACTION_CONNECT:
				connects = true
				if a.GetEndpointId() == "" && a.GetAgentQueue() == nil {
					return bad("on_answer.options: digit %s connects, which needs on_answer.endpoint_id or on_answer.agent_queue", d)
				}
			case dialerv1.BlastAction_BLAST_ACTION_OPT_OUT, dialerv1.BlastAction_BLAST_ACTION_END:
			default:
				return bad("on_answer.options: digit %s needs an action (CONNECT, OPT_OUT or END)", d)
			}
		}
	} else if a.GetOptionTries() != 0 || a.GetOptionTimeoutMs() != 0 {
		return bad("on_answer.option_tries and option_timeout_ms need options")
	}
	if t := a.GetOptionTries(); t < 0 || t > 5 {
		return bad("on_answer.option_tries must be between 0 (3) and 5")
	}
	if t := a.GetOptionTimeoutMs(); t != 0 && (t < 1000 || t > 30000) {
		return bad("on_answer.option_timeout_ms must be 0 (5000) or between 1000 and 30000")
	}
	if m := a.GetMachineMessage(); m != "" {
		if !a.GetDetectMachine() {
			return bad("on_answer.machine_message needs detect_machine")
		}
		if !announcementRe.MatchString(m) || strings.Contains(m, ";") {
			return bad("on_answer.machine_message must be a file path or URL without spaces or ';' (at most 512 characters)")
		}
	}
	if len(a.GetOptions()) > 0 && strings.Contains(a.GetAnnouncement(), ";") {
		return bad("on_answer.announcement of a campaign with options must not contain ';'")
	}
	if q := a.GetAgentQueue(); q != nil {
		switch {
		case !connects:
			return bad("on_answer.agent_queue needs a CONNECT option (the digit that puts the recipient in the queue)")
		case a.GetEndpointId() != "":
			return bad("on_answer: a CONNECT goes to agent_queue or to endpoint_id, not both")
		case q.GetWaitS() < 0 || q.GetWaitS() > MaxQueueWaitS:
			return bad("on_answer.agent_queue.wait_s must be 0 (60) or between 1 and %d", MaxQueueWaitS)
		case q.GetMaxWaiting() < 0 || q.GetMaxWaiting() > MaxQueueWaiting:
			return bad("on_answer.agent_queue.max_waiting must be 0 (no limit) or between 1 and %d", MaxQueueWaiting)
		case q.GetNoAgentMessage() == "":
			return bad("on_answer.agent_queue.no_agent_message is required: what a recipient hears when no agent came in time")
		case !mediaOK(q.GetNoAgentMessage()):
			return bad("on_answer.agent_queue.no_agent_message must be a file path or URL without spaces or ';' (at most 512 characters)")
		case q.GetHoldMusic() != "" && !mediaOK(q.GetHoldMusic()):
			return bad("on_answer.agent_queue.hold_music must be a file path or URL without spaces or ';' (at most 512 characters)")
		case q.GetHoldMusic() != "" && q.GetHoldMusic() == q.GetNoAgentMessage():
			return bad("on_answer.agent_queue.hold_music and no_agent_message must differ")
		}
	}
	return nil
}

// mediaOK reports whether a file or URL can be handed to FreeSWITCH as an
// application's argument (no spaces, no ';').
func mediaOK(v string) bool {
	return announcementRe.MatchString(v) && !strings.Contains(v, ";")
}

// CreateCampaign validates and stores a campaign in status CREATED.
func (s *Server) CreateCampaign(ctx context.Context, req *dialerv1.CreateCampaignRequest) (*dialerv1.CreateCampaignResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	c := proto.Clone(req.GetCampaign()).(*dialerv1.Campaign)
	if c == nil {
		c = &dialerv1.Campaign{}
	}
	if err := s.validate(ctx, account, c); err != nil {
		return nil, grpcError(s.Log, "CreateCampaign", err)
	}
	settings, err := settingsOf(c)
	if err != nil {
		return nil, grpcError(s.Log, "CreateCampaign", err)
	}
	r, err := s.load(ctx, s.DB.QueryRow(ctx, `INSERT INTO dialer.campaigns (id, account_id, name, status, settings)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+campaignCols, ids.NewV4(), account, c.GetName(), int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED), settings))
	if err != nil {
		return nil, grpcError(s.Log, "CreateCampaign", err)
	}
	return &dialerv1.CreateCampaignResponse{Campaign: r.c}, nil
}

// GetCampaign returns a campaign with its progress.
func (s *Server) GetCampaign(ctx context.Context, req *dialerv1.GetCampaignRequest) (*dialerv1.GetCampaignResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.get(ctx, account, req.GetId())
	if err != nil {
		return nil, grpcError(s.Log, "GetCampaign", err)
	}
	if err := s.fillProgress(ctx, r); err != nil {
		return nil, grpcError(s.Log, "GetCampaign", err)
	}
	return &dialerv1.GetCampaignResponse{Campaign: r.c}, nil
}

// campaignUsesAgents: paced by agents, or a BLAST whose CONNECT queues for
// them.
func campaignUsesAgents(c *dialerv1.Campaign) bool {
	m := c.GetPacing().GetMode()
	return m == dialerv1.PacingMode_PACING_MODE_AGENTS || m == dialerv1.PacingMode_PACING_MODE_PREDICTIVE || c.GetOnAnswer().GetAgentQueue() != nil
}

// fillProgress counts the current run's records and, for a campaign served
// by agents, reads its agents and waiting calls.
func (s *Server) fillProgress(ctx context.Context, r *campaignRow) error {
	p := &dialerv1.CampaignProgress{}
	err := s.DB.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.final), count(*) FILTER (WHERE r.status IN ('running', 'talking')),
			count(*) FILTER (WHERE r.status = 'answered')
		FROM dialer.records r JOIN dialer.lists l ON l.id = r.list_id
		WHERE r.campaign_id = $1 AND l.active AND l.status = $2`, r.c.GetId(), int16(dialerv1.ListStatus_LIST_STATUS_READY)).
		Scan(&p.Records, &p.Final, &p.Live, &p.Answered)
	if err != nil {
		return err
	}
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM dialer.attempts WHERE campaign_id = $1 AND run = $2`, r.c.GetId(), r.run).Scan(&p.Attempts); err != nil {
		return err
	}
	if r.c.GetPacing().GetMode() == dialerv1.PacingMode_PACING_MODE_AGENTS || r.c.GetPacing().GetMode() == dialerv1.PacingMode_PACING_MODE_PREDICTIVE {
		day, month, err := abandonmentWindows(ctx, s.DB, r.c.GetId(), time.Now())
		if err != nil {
			return err
		}
		p.Abandonment = abandonmentOf(day, month)
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM dialer.records WHERE campaign_id = $1 AND status = 'running'`, r.c.GetId()).Scan(&p.Ringing); err != nil {
			return err
		}
		if e, ok := s.Engine.(*Engine); ok && e != nil {
			if d := e.pacers.peek(r.c.GetId()); d != nil {
				p.DialLevel = d.Level
			}
		}
	}
	if s.Agents != nil && campaignUsesAgents(r.c) {
		l, err := s.Agents.live(ctx, r.c.GetId(), s.now())
		if err != nil {
			return err
		}
		p.Agents, p.Waiting, p.LongestWaitMs = l.agents, l.waiting, l.longest.Milliseconds()
	}
	r.c.Progress = p
	return nil
}

// ListCampaigns pages through the account's campaigns, newest first.
func (s *Server) ListCampaigns(ctx context.Context, req *dialerv1.ListCampaignsRequest) (*dialerv1.ListCampaignsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	before, beforeID := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "ffffffff-ffff-ffff-ffff-ffffffffffff"
	if tok := req.GetPageToken(); tok != "" {
		ts, id, ok := strings.Cut(tok, "_")
		n, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || !uuidRe.MatchString(id) {
			return nil, ErrInvalidPageToken
		}
		before, beforeID = time.UnixMicro(n), id
	}
	rows, err := s.DB.Query(ctx, `SELECT `+campaignCols+` FROM dialer.campaigns
		WHERE account_id = $1 AND ($2 = 0 OR status = $2) AND (created_at, id) < ($3, $4::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $5`, account, int16(req.GetStatus()), before, beforeID, size+1)
	if err != nil {
		return nil, grpcError(s.Log, "ListCampaigns", err)
	}
	defer rows.Close()
	resp := &dialerv1.ListCampaignsResponse{}
	for rows.Next() {
		r, err := scanCampaign(rows)
		if err != nil {
			return nil, grpcError(s.Log, "ListCampaigns", err)
		}
		resp.Campaigns = append(resp.Campaigns, r.c)
	}
	if err := rows.Err(); err != nil {
		return nil, grpcError(s.Log, "ListCampaigns", err)
	}
	if len(resp.Campaigns) > size {
		resp.Campaigns = resp.Campaigns[:size]
		last := resp.Campaigns[size-1]
		resp.NextPageToken = strconv.FormatInt(last.GetCreatedAt().AsTime().UnixMicro(), 10) + "_" + last.GetId()
	}
	return resp, nil
}

// UpdateCampaign changes a CREATED or FINISHED campaign.
func (s *Server) UpdateCampaign(ctx context.Context, req *dialerv1.UpdateCampaignRequest) (*dialerv1.UpdateCampaignResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetCampaign()
	if !uuidRe.MatchString(in.GetId()) {
		return nil, ErrCampaignNotFound
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = fieldmask.Present(in)
	}
	var out *campaignRow
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		cur, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM dialer.campaigns WHERE account_id = $1 AND id = $2 FOR UPDATE`, account, in.GetId()))
		if err != nil {
			return campaignErr(err)
		}
		if st := cur.c.GetStatus(); st != dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED && st != dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED {
			return ErrCampaignNotEditable.WithMsg(fmt.Sprintf("the campaign is %s: it can be edited only while CREATED or FINISHED",
				strings.TrimPrefix(st.String(), "CAMPAIGN_STATUS_")))
		}
		for _, p := range paths {
			if outputOnly[p] {
				continue // grpc-gateway may include them
			}
			if err := fieldmask.Copy(cur.c, in, p); err != nil {
				return ErrInvalidArgument.WithMsg("update_mask: " + err.Error())
			}
		}
		if err := s.validate(ctx, account, cur.c); err != nil {
			return err
		}
		settings, err := settingsOf(cur.c)
		if err != nil {
			return err
		}
		out, err = scanCampaign(tx.QueryRow(ctx, `UPDATE dialer.campaigns SET name = $3, settings = $4, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING `+campaignCols, account, in.GetId(), cur.c.GetName(), settings))
		return campaignErr(err)
	})
	if err != nil {
		return nil, grpcError(s.Log, "UpdateCampaign", err)
	}
	return &dialerv1.UpdateCampaignResponse{Campaign: out.c}, nil
}

// DeleteCampaign removes a campaign that is not running or paused.
func (s *Server) DeleteCampaign(ctx context.Context, req *dialerv1.DeleteCampaignRequest) (*dialerv1.DeleteCampaignResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.get(ctx, account, req.GetId())
	if err != nil {
		return nil, grpcError(s.Log, "DeleteCampaign", err)
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM dialer.campaigns WHERE account_id = $1 AND id = $2 AND status NOT IN ($3, $4)
		AND NOT EXISTS (SELECT 1 FROM dialer.records WHERE campaign_id = $2 AND status IN ('running', 'talking'))`,
		account, r.c.GetId(), int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING), int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED))
	if err != nil {
		return nil, grpcError(s.Log, "DeleteCampaign", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, ErrInvalidTransition.WithMsg("a running or paused campaign, or one with live calls, cannot be deleted: cancel it first")
	}
	_, _ = s.DB.Exec(ctx, `DELETE FROM dialer.dnc WHERE account_id = $1 AND scope = $2`, account, r.c.GetId())
	return &dialerv1.DeleteCampaignResponse{}, nil
}

// transition moves a campaign from one of the statuses in from to to, in a
// transaction where also runs (nil: nothing more).
func (s *Server) transition(ctx context.Context, op, id string, to dialerv1.CampaignStatus, from []dialerv1.CampaignStatus,
	also func(tx pgx.Tx, r *campaignRow) error) (*dialerv1.Campaign, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if !uuidRe.MatchString(id) {
		return nil, ErrCampaignNotFound
	}
	var out *campaignRow
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		cur, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM dialer.campaigns WHERE account_id = $1 AND id = $2 FOR UPDATE`, account, id))
		if err != nil {
			return campaignErr(err)
		}
		if !slices.Contains(from, cur.c.GetStatus()) {
			names := make([]string, len(from))
			for i, f := range from {
				names[i] = strings.TrimPrefix(f.String(), "CAMPAIGN_STATUS_")
			}
			return ErrInvalidTransition.WithMsg(fmt.Sprintf("cannot %s a %s campaign (only %s)", op,
				strings.TrimPrefix(cur.c.GetStatus().String(), "CAMPAIGN_STATUS_"), strings.Join(names, " or ")))
		}
		if also != nil {
			if err := also(tx, cur); err != nil {
				return err
			}
		}
		out, err = scanCampaign(tx.QueryRow(ctx, `UPDATE dialer.campaigns SET status = $2, updated_at = now() WHERE id = $1 RETURNING `+campaignCols, id, int16(to)))
		return err
	})
	if err != nil {
		return nil, grpcError(s.Log, op, err)
	}
	if err := s.fillProgress(ctx, out); err != nil {
		return nil, grpcError(s.Log, op, err)
	}
	if s.Engine != nil && to == dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING {
		s.Engine.Wake()
	}
	return out.c, nil
}

// StartCampaign starts a CREATED campaign, or runs a FINISHED or CANCELLED
// one again from the start (a new run: every record ready, no tries).
func (s *Server) StartCampaign(ctx context.Context, req *dialerv1.StartCampaignRequest) (*dialerv1.StartCampaignResponse, error) {
	c, err := s.transition(ctx, "start", req.GetId(), dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING,
		[]dialerv1.CampaignStatus{dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED,
			dialerv1.CampaignStatus_CAMPAIGN_STATUS_CANCELLED},
		func(tx pgx.Tx, r *campaignRow) error {
			var records, live int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE l.active AND l.status = $2), count(*) FILTER (WHERE r.status IN ('running', 'talking'))
				FROM dialer.records r JOIN dialer.lists l ON l.id = r.list_id WHERE r.campaign_id = $1`,
				r.c.GetId(), int16(dialerv1.ListStatus_LIST_STATUS_READY)).Scan(&records, &live); err != nil {
				return err
			}
			if records == 0 {
				return ErrNoRecords.WithMsg("the campaign has no active list with records: import one with POST /v1/dialer/campaigns/{id}/lists")
			}
			if live > 0 {
				return ErrInvalidTransition.WithMsg(fmt.Sprintf("%d calls of the last run are still live: start again once they end", live))
			}
			run := r.run + 1
			if _, err := tx.Exec(ctx, `UPDATE dialer.records SET run = $2, status = 'ready', final = false, tries = 0,
				next_at = coalesce(schedule_at, '-infinity'), lease_owner = '', lease_until = NULL, call_id = '',
				last_attempt_at = NULL, last_duration_s = 0, tags = '{}', destination = '' WHERE campaign_id = $1`, r.c.GetId(), run); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE dialer.campaigns SET run = $2, started_at = now(), finished_at = NULL WHERE id = $1`, r.c.GetId(), run)
			return err
		})
	if err != nil {
		return nil, err
	}
	return &dialerv1.StartCampaignResponse{Campaign: c}, nil
}

// PauseCampaign stops new dials; live calls go on.
func (s *Server) PauseCampaign(ctx context.Context, req *dialerv1.PauseCampaignRequest) (*dialerv1.PauseCampaignResponse, error) {
	c, err := s.transition(ctx, "pause", req.GetId(), dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED,
		[]dialerv1.CampaignStatus{dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING}, nil)
	if err != nil {
		return nil, err
	}
	return &dialerv1.PauseCampaignResponse{Campaign: c}, nil
}

// ResumeCampaign dials again.
func (s *Server) ResumeCampaign(ctx context.Context, req *dialerv1.ResumeCampaignRequest) (*dialerv1.ResumeCampaignResponse, error) {
	c, err := s.transition(ctx, "resume", req.GetId(), dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING,
		[]dialerv1.CampaignStatus{dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED}, nil)
	if err != nil {
		return nil, err
	}
	return &dialerv1.ResumeCampaignResponse{Campaign: c}, nil
}

// CancelCampaign stops a campaign; its live calls are hung up only if asked.
// Records scheduled for later become "rescheduled" (the spec's status).
func (s *Server) CancelCampaign(ctx context.Context, req *dialerv1.CancelCampaignRequest) (*dialerv1.CancelCampaignResponse, error) {
	var live []string
	c, err := s.transition(ctx, "cancel", req.GetId(), dialerv1.CampaignStatus_CAMPAIGN_STATUS_CANCELLED,
		[]dialerv1.CampaignStatus{dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING, dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED},
		func(tx pgx.Tx, r *campaignRow) error {
			if _, err := tx.Exec(ctx, `UPDATE dialer.records SET status = 'rescheduled' WHERE campaign_id = $1 AND NOT final
				AND status NOT IN ('running', 'talking') AND schedule_at > now() AND tries = 0`, r.c.GetId()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE dialer.campaigns SET finished_at = now() WHERE id = $1`, r.c.GetId()); err != nil {
				return err
			}
			if !req.GetHangupLiveCalls() {
				return nil
			}
			rows, err := tx.Query(ctx, `SELECT call_id FROM dialer.records WHERE campaign_id = $1 AND status IN ('running', 'talking') AND call_id <> ''`, r.c.GetId())
			if err != nil {
				return err
			}
			live, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
	if err != nil {
		return nil, err
	}
	if len(live) > 0 && s.Calls != nil {
		account, _ := accountFrom(ctx)
		out := metadata.NewOutgoingContext(ctx, metadata.Pairs(AccountHeader, account))
		for _, id := range live {
			if _, err := s.Calls.HangupCall(out, &originationv1.HangupCallRequest{Id: id}); err != nil && s.Log != nil {
				s.Log.Warn("hang up a cancelled campaign's call", "call_id", id, "err", err)
			}
		}
	}
	return &dialerv1.CancelCampaignResponse{Campaign: c}, nil
}

// GetReport groups the current run's records by status, by attempts and by
// tag (the spec's "Statistics by Campaign").
func (s *Server) GetReport(ctx context.Context, req *dialerv1.GetReportRequest) (*dialerv1.GetReportResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.report(ctx, account, req.GetId())
	if err != nil {
		return nil, grpcError(s.Log, "GetReport", err)
	}
	return resp, nil
}

// report computes one of the account's campaigns' statistics: GetReport's
// answer, also the ExportReport's file.
func (s *Server) report(ctx context.Context, account, id string) (*dialerv1.GetReportResponse, error) {
	r, err := s.get(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if err := s.fillProgress(ctx, r); err != nil {
		return nil, fmt.Errorf("count campaign %s: %w", id, err)
	}
	resp := &dialerv1.GetReportResponse{Campaign: r.c, Total: r.c.GetProgress().GetRecords()}
	day, month, err := abandonmentWindows(ctx, s.DB, r.c.GetId(), time.Now())
	if err != nil {
		return nil, err
	}
	resp.Abandonment = abandonmentOf(day, month)
	group := func(sel string) ([]*dialerv1.ReportRow, error) {
		rows, err := s.DB.Query(ctx, `SELECT g, count(*) FROM (SELECT `+sel+` AS g FROM dialer.records r JOIN dialer.lists l ON l.id = r.list_id
			WHERE r.campaign_id = $1 AND l.active AND l.status = $2) x WHERE g IS NOT NULL GROUP BY g ORDER BY count(*) DESC, g`,
			r.c.GetId(), int16(dialerv1.ListStatus_LIST_STATUS_READY))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []*dialerv1.ReportRow
		for rows.Next() {
			row := &dialerv1.ReportRow{}
			if err := rows.Scan(&row.Type, &row.Total); err != nil {
				return nil, err
			}
			if resp.Total > 0 {
				row.Percentage = float64(row.Total) * 100 / float64(resp.Total)
			}
			out = append(out, row)
		}
		return out, rows.Err()
	}
	if resp.ByStatus, err = group("r.status"); err == nil {
		if resp.ByAttempts, err = group("r.tries::text"); err == nil {
			if resp.ByTag, err = group("unnest(r.tags)"); err == nil {
				resp.ByDestination, err = group("nullif(r.destination, '')")
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("group campaign %s's records: %w", id, err)
	}
	return resp, nil
}

// ListRecords pages through the detailed report, in list order.
func (s *Server) ListRecords(ctx context.Context, req *dialerv1.ListRecordsRequest) (*dialerv1.ListRecordsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkStatus(req.GetStatus()); err != nil {
		return nil, err
	}
	if err := checkDestination(req.GetDestination()); err != nil {
		return nil, err
	}
	r, err := s.get(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "ListRecords", err)
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = 100
	}
	size = min(size, 1000)
	var after int64
	if tok := req.GetPageToken(); tok != "" {
		if after, err = strconv.ParseInt(tok, 10, 64); err != nil || after < 0 {
			return nil, ErrInvalidPageToken
		}
	}
	rows, err := s.DB.Query(ctx, `SELECT id, list_id, line, raw, numbers, fields, status, final, tries, call_id, last_attempt_at,
			last_duration_s, CASE WHEN next_at = '-infinity' THEN NULL ELSE next_at END, tags, destination
		FROM dialer.records WHERE campaign_id = $1 AND id > $2 AND ($3 = '' OR status = $3) AND ($5 = '' OR destination = $5)
		ORDER BY id LIMIT $4`,
		r.c.GetId(), after, req.GetStatus(), size+1, req.GetDestination())
	if err != nil {
		return nil, grpcError(s.Log, "ListRecords", err)
	}
	defer rows.Close()
	resp := &dialerv1.ListRecordsResponse{}
	var lastID int64
	for rows.Next() {
		var (
			rec     dialerv1.Record
			id      int64
			last    *time.Time
			next    *time.Time
			fields  map[string]string
			listID  string
			numbers []string
			final   bool
		)
		if err := rows.Scan(&id, &listID, &rec.Line, &rec.Raw, &numbers, &fields, &rec.Status, &final, &rec.Tries, &rec.LastCallId, &last,
			&rec.LastDurationS, &next, &rec.Tags, &rec.Destination); err != nil {
			return nil, grpcError(s.Log, "ListRecords", err)
		}
		if len(resp.Records) == size {
			resp.NextPageToken = strconv.FormatInt(lastID, 10)
			break
		}
		rec.Id, rec.ListId, rec.Numbers, rec.Fields = strconv.FormatInt(id, 10), listID, numbers, fields
		if last != nil {
			rec.LastAttemptAt = timestamppb.New(*last)
		}
		if next != nil && !final {
			rec.NextAttemptAt = timestamppb.New(*next)
		}
		resp.Records = append(resp.Records, &rec)
		lastID = id
	}
	if err := rows.Err(); err != nil {
		return nil, grpcError(s.Log, "ListRecords", err)
	}
	return resp, nil
}
