-- Call detail records: one row per ended call, written by the ingest
-- consumer from the call's final event (CALL_COMPLETED, CALL_FAILED or
-- CALL_CANCELED), which carries the whole call. The columns are what queries
-- filter and statistics aggregate on; `call` is the snapshot itself
-- (ringback.origination.v1.Call, protobuf), from which records are served.
-- Enum columns hold the proto enum numbers (stable by the proto rules).
CREATE TABLE cdrs (
    call_id           text PRIMARY KEY,
    account_id        text NOT NULL,
    created_at        timestamptz NOT NULL,  -- the carrier's detect_time
    answered_at       timestamptz,
    bridged_at        timestamptz,           -- the carrier's connect_time
    ended_at          timestamptz NOT NULL,
    status            smallint NOT NULL,     -- CallStatus
    source            smallint NOT NULL,     -- CallSource
    campaign_id       text NOT NULL DEFAULT '',
    failed_leg        smallint NOT NULL DEFAULT 0,  -- LegRole
    failure_reason    smallint NOT NULL DEFAULT 0,  -- FailureReason
    hangup_cause      text NOT NULL DEFAULT '',
    first_number      text NOT NULL DEFAULT '',
    second_number     text NOT NULL DEFAULT '',
    first_endpoint    text NOT NULL DEFAULT '',
    second_endpoint   text NOT NULL DEFAULT '',
    first_country     text NOT NULL DEFAULT '',
    second_country    text NOT NULL DEFAULT '',
    duration_s        integer NOT NULL,
    billsec           integer NOT NULL,
    cost_micros       bigint NOT NULL,
    access_fee_micros bigint NOT NULL,
    currency          text NOT NULL DEFAULT '',
    sequence          integer NOT NULL,      -- of the event the row was built from
    call              bytea NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

-- Range queries with keyset paging, statistics and today's counters.
CREATE INDEX cdrs_account_time ON cdrs (account_id, created_at, call_id);
-- A contact's calls (CRM lookups by number), over any range.
CREATE INDEX cdrs_account_first_number ON cdrs (account_id, first_number, created_at) WHERE first_number <> '';
CREATE INDEX cdrs_account_second_number ON cdrs (account_id, second_number, created_at) WHERE second_number <> '';
-- A campaign's calls.
CREATE INDEX cdrs_account_campaign ON cdrs (account_id, campaign_id, created_at) WHERE campaign_id <> '';

-- Comment types: per account, a named form of typed fields.
CREATE TABLE comment_types (
    id          text PRIMARY KEY,
    account_id  text NOT NULL,
    name        text NOT NULL,
    fields      jsonb NOT NULL,  -- [{name, label, kind, required, choices}]
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- Comments on calls. A comment needs the call's record (checked on insert).
CREATE TABLE comments (
    id          text PRIMARY KEY,
    account_id  text NOT NULL,
    call_id     text NOT NULL REFERENCES cdrs (call_id) ON DELETE CASCADE,
    type_id     text NOT NULL REFERENCES comment_types (id),
    "values"    jsonb NOT NULL,
    author      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_call ON comments (call_id, created_at);
CREATE INDEX comments_type ON comments (type_id);
