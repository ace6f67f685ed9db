// Package webhook is Ringback's webhook service: it delivers each
// account's call events to the URLs it subscribed, and sends the account's
// emails.
//
// The ingest (a durable JetStream consumer on the CALLS stream) writes one
// delivery per event and matching subscription to PostgreSQL, in the
// transaction that also records the event's sequence in its call, and only
// then acks; the new deliveries go straight to the dispatcher of the
// instance that wrote them. The dispatcher sends a call's deliveries to a
// subscription strictly one after the other in sequence order (an event is
// sent only once its call's earlier ones were delivered or given up and
// seen), at most the subscription's concurrency at once, behind a circuit
// breaker, signed per Standard Webhooks, and writes each attempt to the
// delivery log in batches. Retries due soon stay in memory; later ones,
// deliveries beyond an endpoint's memory share, and whatever a dead
// instance held (its lease ran out) are claimed back from PostgreSQL by
// every instance's poller. Nothing is acked before it is stored and
// nothing stored is dropped before its outcome is written, so a crash
// loses nothing: at most an attempt is repeated (receivers deduplicate on
// webhook-id).
//
// Emails (a webhook disabled after failing for too long, click-to-call
// calls waiting to be called back) go through an outbox table, written in
// the transaction that decides them, and are sent over SMTP with retries.
package webhook
