-- Webhook subscriptions and the delivery log. Enum columns hold the proto
-- enum numbers (ringback.webhook.v1 / ringback.events.v1).
CREATE TABLE subscriptions (
    id              text PRIMARY KEY,
    account_id      text NOT NULL,
    url             text NOT NULL,
    format          smallint NOT NULL,               -- WebhookFormat
    event_types     smallint[] NOT NULL DEFAULT '{}', -- EventType; empty: all
    campaign_ids    text[] NOT NULL DEFAULT '{}',     -- empty: all
    enabled         boolean NOT NULL DEFAULT true,
    description     text NOT NULL DEFAULT '',
    timeout_ms      integer NOT NULL,
    max_concurrency integer NOT NULL,
    time_zone       text NOT NULL DEFAULT '',
    secret          text NOT NULL,                    -- whsec_...; never logged
    disabled_reason text NOT NULL DEFAULT '',
    failing_since   timestamptz,                      -- first failure since the last success
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions (account_id, created_at DESC, id DESC);

-- One row per event and subscription. next_attempt_at is when the delivery
-- is due; while an instance holds it (lease_owner set) it is the end of
-- that lease instead, so that the due-poller of every instance skips it
-- until the holder dies (the SQS visibility-timeout pattern).
CREATE TABLE deliveries (
    id              text PRIMARY KEY,                 -- the webhook-id header
    subscription_id text NOT NULL REFERENCES subscriptions ON DELETE CASCADE,
    account_id      text NOT NULL,
    call_id         text NOT NULL,
    event_id        text NOT NULL,
    event_type      smallint NOT NULL,                -- EventType
    seq             integer NOT NULL,                 -- the event's sequence in its call
    occurred_at     timestamptz NOT NULL,
    name            text NOT NULL,                    -- call.completed / callStart ...
    payload         bytea NOT NULL,
    state           smallint NOT NULL DEFAULT 1,      -- DeliveryState: 1 pending, 2 delivered, 3 failed
    attempts        integer NOT NULL DEFAULT 0,
    step            integer NOT NULL DEFAULT 0,       -- position in the retry schedule
    next_attempt_at timestamptz NOT NULL,
    lease_owner     text,
    last_status     integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)                -- a redelivered event adds nothing
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 1;
CREATE INDEX deliveries_chain ON deliveries (subscription_id, call_id, seq) WHERE state = 1;
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, created_at DESC, id DESC);
CREATE INDEX deliveries_call ON deliveries (account_id, call_id, created_at DESC, id DESC);

CREATE TABLE attempts (
    delivery_id      text NOT NULL REFERENCES deliveries ON DELETE CASCADE,
    number           integer NOT NULL,
    started_at       timestamptz NOT NULL,
    latency_ms       integer NOT NULL,
    status           integer NOT NULL,
    success          boolean NOT NULL,
    error            text NOT NULL DEFAULT '',
    response_excerpt text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, number)
);

-- The sequences of every call event seen, so that an event is sent only
-- once its call's earlier events are known (a redelivery after a crash can
-- bring them late). Pruned after a day.
CREATE TABLE call_seqs (
    call_id text NOT NULL,
    seq     integer NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX call_seqs_seen ON call_seqs (seen_at);

CREATE TABLE notification_settings (
    account_id text PRIMARY KEY,
    emails     text[] NOT NULL DEFAULT '{}',
    time_zone  text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL
);

-- Failed calls waiting to be called back (Call.reminder_timeout_s > 0).
CREATE TABLE reminders (
    call_id        text PRIMARY KEY,
    account_id     text NOT NULL,
    campaign_id    text NOT NULL DEFAULT '',
    number         text NOT NULL,                    -- the party to call back (E.164)
    failed_leg     smallint NOT NULL DEFAULT 0,
    failure_reason smallint NOT NULL DEFAULT 0,
    failed_at      timestamptz NOT NULL,
    due_at         timestamptz NOT NULL,
    called_back_at timestamptz,
    called_back_by text,                             -- the call that reached the party
    reminded_at    timestamptz
);
CREATE INDEX reminders_due ON reminders (due_at) WHERE called_back_at IS NULL AND reminded_at IS NULL;
CREATE INDEX reminders_waiting ON reminders (account_id, number) WHERE called_back_at IS NULL;

-- Emails to send (an outbox: written in the transaction that decides them).
CREATE TABLE emails (
    id              text PRIMARY KEY,
    account_id      text NOT NULL,
    kind            text NOT NULL,                   -- webhook_disabled / reminder
    recipients      text[] NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    failed          boolean NOT NULL DEFAULT false,
    last_error      text NOT NULL DEFAULT ''
);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE sent_at IS NULL AND NOT failed;
