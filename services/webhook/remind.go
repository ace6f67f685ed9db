package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/mail"
)

// Kinds of email.
const (
	emailWebhookDisabled = "webhook_disabled"
	emailReminder        = "reminder"
)

// maxEmailAttempts is how many times an email is tried before it is given
// up.
const maxEmailAttempts = 10

// queueEmail adds an email to the outbox in tx, to the account's
// notification addresses; without any, nothing is queued.
func queueEmail(ctx context.Context, tx pgx.Tx, st *Store, account, kind string, now time.Time, render func(loc *time.Location) (subject, body string)) error {
	s, err := st.Settings(ctx, tx, account)
	if err != nil || len(s.Emails) == 0 {
		return err
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	subject, body := render(loc)
	_, err = tx.Exec(ctx, `INSERT INTO webhook.emails (id, account_id, kind, recipients, subject, body, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, ids.NewV7(), account, kind, s.Emails, subject, body, now)
	return err
}

// queueDisabledEmail tells an account one of its webhooks was disabled.
func queueDisabledEmail(ctx context.Context, tx pgx.Tx, st *Store, d disabledSub, now time.Time) error {
	return queueEmail(ctx, tx, st, d.AccountID, emailWebhookDisabled, now, func(loc *time.Location) (string, string) {
		var b strings.Builder
		fmt.Fprintf(&b, "Your Ringback webhook %s (%s) has been disabled: every delivery to it has failed since %s.\n\n",
			d.ID, displayURL(d.URL), d.FailingSince.In(loc).Format("2006-01-02 15:04:05 MST"))
		b.WriteString("Its waiting deliveries are kept. Once the receiver works again, enable the webhook\n")
		fmt.Fprintf(&b, "(PATCH /v1/webhooks/%s with {\"enabled\": true}) and they are sent in order.\n", d.ID)
		b.WriteString("Failed deliveries can be sent again with POST /v1/webhooks/{id}:redeliver.\n")
		return "Ringback: webhook disabled after failing deliveries", b.String()
	})
}

// displayURL is a URL without its query and credentials, which may hold
// tokens that do not belong in an email.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Reminders sends the click-to-call reminders: each account with failed
// calls whose reminder time has passed and whose party nobody has reached
// since gets one email listing them, and each call is reminded once.
type Reminders struct {
	st  *Store
	log *slog.Logger
	m   *metrics
	// Grace: calls falling due this soon after the first due one go in
	// the same email, so failures close together make one reminder.
	Grace time.Duration
}

// waiting is a failed call in a reminder.
type waiting struct {
	CallID, CampaignID, Number string
	FailedLeg, Reason          int16
	FailedAt                   time.Time
}

// run reminds every account that is due, until none is.
func (r *Reminders) run(ctx context.Context, now time.Time) (int, error) {
	rows, err := r.st.DB.Query(ctx, `SELECT DISTINCT account_id FROM webhook.reminders
		WHERE due_at <= $1 AND called_back_at IS NULL AND reminded_at IS NULL LIMIT 1000`, now)
	if err != nil {
		return 0, err
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, account := range accounts {
		n, err := r.remind(ctx, account, now)
		if err != nil {
			return sent, fmt.Errorf("remind account %s: %w", account, err)
		}
		sent += n
	}
	return sent, nil
}

// remind queues one account's reminder email; the rows stay locked until
// the email is in the outbox and they are marked, so two instances never
// remind the same call.
func (r *Reminders) remind(ctx context.Context, account string, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, r.st.DB, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT call_id, campaign_id, number, failed_leg, failure_reason, failed_at
			FROM webhook.reminders
			WHERE account_id = $1 AND due_at <= $2 AND called_back_at IS NULL AND reminded_at IS NULL
			ORDER BY failed_at LIMIT 500 FOR UPDATE SKIP LOCKED`, account, now.Add(r.Grace))
		if err != nil {
			return err
		}
		calls, err := pgx.CollectRows(rows, pgx.RowToStructByPos[waiting])
		if err != nil || len(calls) == 0 {
			return err
		}
		err = queueEmail(ctx, tx, r.st, account, emailReminder, now, func(loc *time.Location) (string, string) {
			return reminderEmail(calls, loc)
		})
		if err != nil {
			return err
		}
		callIDs := make([]string, len(calls))
		for i, c := range calls {
			callIDs[i] = c.CallID
		}
		_, err = tx.Exec(ctx, `UPDATE webhook.reminders SET reminded_at = $2 WHERE call_id = ANY($1)`, callIDs, now)
		n = len(calls)
		return err
	})
	if err == nil && n > 0 {
		r.m.reminded.Add(float64(n))
		r.log.Info("reminded of calls waiting to be called back", "account_id", account, "calls", n)
	}
	return n, err
}

// reminderEmail renders the reminder of calls.
func reminderEmail(calls []waiting, loc *time.Location) (subject, body string) {
	subject = "Ringback: 1 failed call is waiting to be called back"
	if len(calls) > 1 {
		subject = fmt.Sprintf("Ringback: %d failed calls are waiting to be called back", len(calls))
	}
	var b strings.Builder
	b.WriteString("These click-to-call calls failed and nobody has reached the person since:\n\n")
	for _, c := range calls {
		fmt.Fprintf(&b, "- %s, failed %s: %s", c.Number, c.FailedAt.In(loc).Format("2006-01-02 15:04 MST"), failureText(c.FailedLeg, c.Reason))
		if c.CampaignID != "" {
			fmt.Fprintf(&b, " (campaign %s)", c.CampaignID)
		}
		fmt.Fprintf(&b, ", call %s\n", c.CallID)
	}
	b.WriteString("\nCall them back from the failed calls of your campaigns. Each call is reminded once.\n")
	return subject, b.String()
}

// failureText is the click-to-call spec's status of a failed call with its
// reason.
func failureText(leg, reason int16) string {
	status := "FAILED"
	switch originationv1.LegRole(leg) {
	case originationv1.LegRole_LEG_ROLE_FIRST:
		status = "FAILED CALLING TO USER"
	case originationv1.LegRole_LEG_ROLE_SECOND:
		status = "FAILED CALLING TO COMPANY"
	}
	r := strings.TrimPrefix(originationv1.FailureReason(reason).String(), "FAILURE_REASON_")
	if r == "UNSPECIFIED" {
		return status
	}
	return status + " (" + strings.ToLower(strings.ReplaceAll(r, "_", " ")) + ")"
}

// Outbox sends queued emails, retrying temporary failures with backoff.
type Outbox struct {
	st     *Store
	sender *mail.Sender
	log    *slog.Logger
	m      *metrics
}

// outgoing is a claimed email.
type outgoing struct {
	ID         string
	Recipients []string
	Subject    string
	Body       string
	Attempts   int
}

// run sends what is due; it returns how many it sent.
func (o *Outbox) run(ctx context.Context) (int, error) {
	rows, err := o.st.DB.Query(ctx, `UPDATE webhook.emails e SET next_attempt_at = now() + interval '5 minutes', attempts = e.attempts + 1
		FROM (SELECT id FROM webhook.emails WHERE sent_at IS NULL AND NOT failed AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT 20 FOR UPDATE SKIP LOCKED) c
		WHERE e.id = c.id
		RETURNING e.id, e.recipients, e.subject, e.body, e.attempts`)
	if err != nil {
		return 0, err
	}
	emails, err := pgx.CollectRows(rows, pgx.RowToStructByPos[outgoing])
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, e := range emails {
		err := o.sender.Send(ctx, mail.Message{To: e.Recipients, Subject: e.Subject, Text: e.Body})
		switch {
		case err == nil:
			sent++
			o.m.emails.WithLabelValues("sent").Inc()
			_, err = o.st.DB.Exec(ctx, `UPDATE webhook.emails SET sent_at = now(), last_error = '' WHERE id = $1`, e.ID)
		case mail.Permanent(err) || e.Attempts >= maxEmailAttempts:
			o.m.emails.WithLabelValues("failed").Inc()
			o.log.Error("email given up", "email_id", e.ID, "attempts", e.Attempts, "err", err)
			_, err = o.st.DB.Exec(ctx, `UPDATE webhook.emails SET failed = true, last_error = $2 WHERE id = $1`, e.ID, err.Error())
		default:
			o.m.emails.WithLabelValues("retry").Inc()
			backoff := time.Duration(1<<min(e.Attempts, 6)) * 30 * time.Second
			o.log.Warn("email not sent; retrying", "email_id", e.ID, "attempts", e.Attempts, "retry_in", backoff, "err", err)
			_, err = o.st.DB.Exec(ctx, `UPDATE webhook.emails SET next_attempt_at = now() + $2::interval, last_error = $3 WHERE id = $1`,
				e.ID, backoff, err.Error())
		}
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}
