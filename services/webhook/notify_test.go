package webhook

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/mail/mailtest"
	"github.com/ringback/ringback/services/webhook/webhooktest"
)

// notifyReminder is a reminder row as the test reads it.
type notifyReminder struct {
	account, number      string
	calledBack, reminded bool
}

func notifyReminders(t testing.TB, h *harness) map[string]notifyReminder {
	t.Helper()
	rows, err := h.st.DB.Query(context.Background(), `SELECT call_id, account_id, number,
		called_back_at IS NOT NULL, reminded_at IS NOT NULL FROM webhook.reminders`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]notifyReminder{}
	for rows.Next() {
		var (
			call string
			r    notifyReminder
		)
		if err := rows.Scan(&call, &r.account, &r.number, &r.calledBack, &r.reminded); err != nil {
			t.Fatal(err)
		}
		out[call] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// notifyWaitReminders polls the reminders until ok holds.
func notifyWaitReminders(t testing.TB, h *harness, what string, ok func(map[string]notifyReminder) bool) map[string]notifyReminder {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs := notifyReminders(t, h)
		if ok(rs) {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s; reminders: %+v", what, rs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Failed click-to-call calls whose party nobody reached by their reminder
// time are listed in one email to the account; a party a later call
// reached is left out, each call is reminded once, an account without
// notification addresses gets nothing, and a call that asked for no
// reminder is never reminded.
func TestReminderEmail(t *testing.T) {
	t.Parallel()
	smtp := mailtest.Start(t, mailtest.Options{})
	h := startHarness(t, map[string]string{"RINGBACK_SMTP_ADDR": smtp.Addr(), "RINGBACK_SMTP_TLS": "none"})
	notes := &notificationServer{st: h.st, now: time.Now}
	if _, err := notes.UpdateNotificationSettings(as("acct-a"), &webhookv1.UpdateNotificationSettingsRequest{
		Settings: &webhookv1.NotificationSettings{Emails: []string{"sales@example.com", "boss@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	const x, y, z, w = "+34600000001", "+34600000002", "+34600000003", "+34600000004"
	start := time.Now()
	failed := map[string]string{} // number -> call id, acct-a's reminded calls
	for _, n := range []string{x, y, z} {
		evs := callEvents(callSpec{Failed: true, ReminderS: 1, First: n, Start: start})
		failed[n] = evs[0].GetCallId()
		h.publish(t, evs...)
	}
	noReminder := callEvents(callSpec{Failed: true, First: w, Start: start})
	// The party acct-a's later call reaches, but as acct-b's customer.
	otherAccount := callEvents(callSpec{Account: "acct-b", Failed: true, ReminderS: 1, First: y, Start: start})
	h.publish(t, noReminder...)
	h.publish(t, otherAccount...)
	notifyWaitReminders(t, h, "the failed calls' reminders", func(rs map[string]notifyReminder) bool { return len(rs) >= 4 })

	// Y is reached by a later call well before the 1 s reminder time.
	reach := callEvents(callSpec{First: y, Start: start.Add(100 * time.Millisecond)})
	h.publish(t, reach...)
	rs := notifyWaitReminders(t, h, "every reminder decided", func(rs map[string]notifyReminder) bool {
		for _, r := range rs {
			if !r.calledBack && !r.reminded {
				return false
			}
		}
		return true
	})
	if _, ok := rs[noReminder[0].GetCallId()]; ok {
		t.Errorf("a call without reminder_timeout_s has a reminder")
	}
	for n, call := range failed {
		r := rs[call]
		if want := n == y; r.calledBack != want || r.reminded == want {
			t.Errorf("reminder of %s: called back %v, reminded %v", n, r.calledBack, r.reminded)
		}
	}
	if r := rs[otherAccount[0].GetCallId()]; !r.reminded || r.calledBack || r.account != "acct-b" {
		t.Errorf("acct-b's reminder: %+v; acct-a's call must not count as calling acct-b's party back", r)
	}

	msgs, err := smtp.Wait(failCtx(t, 15*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if !slices.Equal(m.To, []string{"sales@example.com", "boss@example.com"}) {
		t.Errorf("reminder to %v", m.To)
	}
	if subject := m.Header.Get("Subject"); !strings.Contains(subject, "2 failed calls") {
		t.Errorf("subject %q, want it to count 2 failed calls", subject)
	}
	for _, n := range []string{x, z} {
		if !strings.Contains(m.Body, n) || !strings.Contains(m.Body, failed[n]) {
			t.Errorf("the reminder does not list %s (call %s):\n%s", n, failed[n], m.Body)
		}
	}
	for _, n := range []string{y, w} {
		if strings.Contains(m.Body, n) {
			t.Errorf("the reminder lists %s:\n%s", n, m.Body)
		}
	}
	if !strings.Contains(m.Body, "FAILED CALLING TO USER") {
		t.Errorf("the reminder does not give the carrier's status:\n%s", m.Body)
	}

	// Everything is decided: the outbox holds just that email, sent, and
	// no second one follows.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var n, sent int
		if err := h.st.DB.QueryRow(context.Background(), `SELECT count(*), count(sent_at) FROM webhook.emails`).Scan(&n, &sent); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("the outbox has %d emails, want the one reminder", n)
		}
		if sent == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reminder that arrived is not recorded as sent")
		}
	}
	time.Sleep(1500 * time.Millisecond) // a reminder pass and an outbox pass or more
	if got := len(smtp.Messages()); got != 1 {
		t.Errorf("%d emails, want one reminder", got)
	}
}

// One account cannot see, change, delete, re-key or redeliver another's
// webhooks and deliveries through the API, and never receives its events.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	h := startHarness(t, nil)
	api := apiDial(t, h)
	recvA, recvB := webhooktest.Start(t, nil), webhooktest.Start(t, nil)
	create := func(account, url string) (*webhookv1.Webhook, string) {
		resp, err := api.hooks.CreateWebhook(apiCtx(t, account), &webhookv1.CreateWebhookRequest{Webhook: &webhookv1.Webhook{Url: url}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetWebhook(), resp.GetSecret()
	}
	wA, secretA := create("acct-a", recvA.URL)
	wB, secretB := create("acct-b", recvB.URL)

	callA := callEvents(callSpec{Account: "acct-a"})
	h.publish(t, callA...)
	if _, err := recvA.WaitFor(failCtx(t, 15*time.Second), func(reqs []webhooktest.Request) bool {
		return len(failDistinctIDs(reqs)) >= len(callA)
	}); err != nil {
		t.Fatal(err)
	}
	dsA := failWaitDeliveries(t, h, "acct-a", wA.GetId(), "", 10*time.Second, "acct-a's deliveries delivered",
		failAllIn(webhookv1.DeliveryState_DELIVERY_STATE_DELIVERED, len(callA)))
	dA := dsA[0].GetId()
	sentToA := len(recvA.Requests())

	b := apiCtx(t, "acct-b")
	since := timestamppb.New(time.Now().Add(-time.Hour))
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"GetWebhook", func() error {
			_, err := api.hooks.GetWebhook(b, &webhookv1.GetWebhookRequest{Id: wA.GetId()})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"UpdateWebhook", func() error {
			_, err := api.hooks.UpdateWebhook(b, &webhookv1.UpdateWebhookRequest{Webhook: &webhookv1.Webhook{Id: wA.GetId(), Url: recvB.URL, Description: "mine"}})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"UpdateWebhook disable", func() error {
			_, err := api.hooks.UpdateWebhook(b, &webhookv1.UpdateWebhookRequest{Webhook: &webhookv1.Webhook{Id: wA.GetId()},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"DeleteWebhook", func() error {
			_, err := api.hooks.DeleteWebhook(b, &webhookv1.DeleteWebhookRequest{Id: wA.GetId()})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"RotateWebhookSecret", func() error {
			_, err := api.hooks.RotateWebhookSecret(b, &webhookv1.RotateWebhookSecretRequest{Id: wA.GetId()})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"ListDeliveries by webhook", func() error {
			_, err := api.hooks.ListDeliveries(b, &webhookv1.ListDeliveriesRequest{WebhookId: wA.GetId()})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"ListDeliveries by webhook and call", func() error {
			_, err := api.hooks.ListDeliveries(b, &webhookv1.ListDeliveriesRequest{WebhookId: wA.GetId(), CallId: callA[0].GetCallId()})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"GetDelivery", func() error {
			_, err := api.hooks.GetDelivery(b, &webhookv1.GetDeliveryRequest{WebhookId: wA.GetId(), Id: dA})
			return err
		}, codes.NotFound, "DELIVERY_NOT_FOUND"},
		{"GetDelivery through its own webhook", func() error {
			_, err := api.hooks.GetDelivery(b, &webhookv1.GetDeliveryRequest{WebhookId: wB.GetId(), Id: dA})
			return err
		}, codes.NotFound, "DELIVERY_NOT_FOUND"},
		{"RedeliverDelivery", func() error {
			_, err := api.hooks.RedeliverDelivery(b, &webhookv1.RedeliverDeliveryRequest{WebhookId: wA.GetId(), Id: dA})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
		{"RedeliverDelivery through its own webhook", func() error {
			_, err := api.hooks.RedeliverDelivery(b, &webhookv1.RedeliverDeliveryRequest{WebhookId: wB.GetId(), Id: dA})
			return err
		}, codes.NotFound, "DELIVERY_NOT_FOUND"},
		{"RedeliverDeliveries", func() error {
			_, err := api.hooks.RedeliverDeliveries(b, &webhookv1.RedeliverDeliveriesRequest{WebhookId: wA.GetId(), Since: since, All: true})
			return err
		}, codes.NotFound, "WEBHOOK_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { apiWantErr(t, tt.call(), tt.code, tt.reason) })
	}

	byCall, err := api.hooks.ListDeliveries(b, &webhookv1.ListDeliveriesRequest{CallId: callA[0].GetCallId()})
	if err != nil {
		t.Fatal(err)
	}
	if len(byCall.GetDeliveries()) != 0 {
		t.Errorf("acct-b lists %d deliveries of acct-a's call", len(byCall.GetDeliveries()))
	}
	list, err := api.hooks.ListWebhooks(b, &webhookv1.ListWebhooksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetWebhooks()) != 1 || list.GetWebhooks()[0].GetId() != wB.GetId() {
		t.Errorf("acct-b lists %v, want only its own webhook", list.GetWebhooks())
	}
	got, err := api.hooks.GetWebhook(apiCtx(t, "acct-a"), &webhookv1.GetWebhookRequest{Id: wA.GetId()})
	if err != nil {
		t.Fatalf("acct-a's webhook after acct-b's attempts: %v", err)
	}
	if w := got.GetWebhook(); w.GetUrl() != recvA.URL || w.GetDescription() != "" || !w.GetEnabled() {
		t.Errorf("acct-b changed acct-a's webhook: %v", w)
	}
	for _, d := range failDeliveries(t, h, "acct-a", wA.GetId(), "") {
		if d.GetState() != webhookv1.DeliveryState_DELIVERY_STATE_DELIVERED || d.GetAttempts() != 1 {
			t.Errorf("acct-a's delivery %s after acct-b's attempts: %v, %d attempts", d.GetId(), d.GetState(), d.GetAttempts())
		}
	}

	// Both accounts' next calls: each webhook gets its own account's events
	// only, still signed with its own secret (acct-b rotated nothing).
	callA2, callB := callEvents(callSpec{Account: "acct-a"}), callEvents(callSpec{Account: "acct-b"})
	h.publish(t, callA2...)
	h.publish(t, callB...)
	reqsA, err := recvA.WaitFor(failCtx(t, 15*time.Second), func(reqs []webhooktest.Request) bool {
		return len(failDistinctIDs(reqs)) >= len(callA)+len(callA2)
	})
	if err != nil {
		t.Fatal(err)
	}
	reqsB, err := recvB.WaitFor(failCtx(t, 15*time.Second), func(reqs []webhooktest.Request) bool {
		return len(failDistinctIDs(reqs)) >= len(callB)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqsA) < sentToA {
		t.Fatal("acct-a's receiver lost requests")
	}
	for _, r := range reqsA {
		if r.CallID != callA[0].GetCallId() && r.CallID != callA2[0].GetCallId() {
			t.Errorf("acct-a's webhook got call %s", r.CallID)
		}
		if err := webhooktest.Verify(secretA, r); err != nil {
			t.Errorf("acct-a's request %s does not verify with acct-a's secret: %v", r.ID, err)
		}
	}
	for _, r := range reqsB {
		if r.CallID != callB[0].GetCallId() {
			t.Errorf("acct-b's webhook got call %s", r.CallID)
		}
		if err := webhooktest.Verify(secretB, r); err != nil {
			t.Errorf("acct-b's request %s does not verify with acct-b's secret: %v", r.ID, err)
		}
	}
}
