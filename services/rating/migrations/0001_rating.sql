-- Tariffs: named sets of per-prefix rates in one currency.
CREATE TABLE tariffs (
    id          text        PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    description text        NOT NULL DEFAULT '',
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- version increases with every change of the rates; replicas compare
    -- it with what they hold to know they must reload.
    version     bigint      NOT NULL DEFAULT 1,
    rate_count  bigint      NOT NULL DEFAULT 0,
    -- The tariff's rates are table rates_<rate_set> (0: none yet). An
    -- import writes a new table, indexes it once, points the tariff at it
    -- and drops the old one: a million rates load in seconds, where
    -- deleting and inserting them in one shared indexed table took many.
    rate_set    bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE rate_sets;

-- A rate set's table looks like this (created by the service, see
-- Store.ImportRates); effective_from '-infinity' means always, money in
-- micro-units, validated before it is written:
--   CREATE TABLE rates_<n> (prefix text, effective_from timestamptz, destination text,
--       rate_per_minute_micros bigint, connection_fee_micros bigint,
--       min_seconds integer, increment_seconds integer);
--   CREATE UNIQUE INDEX ON rates_<n> (prefix, effective_from DESC);

-- Billing of an account: its tariff, mode and balance. reserved_micros is
-- the sum of its open reservations; available = balance - reserved.
CREATE TABLE billing_accounts (
    account_id      text        PRIMARY KEY,
    tariff_id       text        REFERENCES tariffs (id),
    mode            text        NOT NULL DEFAULT 'POSTPAID' CHECK (mode IN ('PREPAID', 'POSTPAID')),
    currency        text        NOT NULL DEFAULT '',
    balance_micros  bigint      NOT NULL DEFAULT 0,
    reserved_micros bigint      NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE campaign_tariffs (
    account_id  text NOT NULL REFERENCES billing_accounts (account_id) ON DELETE CASCADE,
    campaign_id text NOT NULL,
    tariff_id   text NOT NULL REFERENCES tariffs (id),
    PRIMARY KEY (account_id, campaign_id)
);
CREATE INDEX campaign_tariffs_tariff ON campaign_tariffs (tariff_id);
CREATE INDEX billing_accounts_tariff ON billing_accounts (tariff_id);

-- Money held for an answered leg until its LEG_HANGUP settles it.
CREATE TABLE reservations (
    call_id         text        NOT NULL,
    leg             text        NOT NULL,
    account_id      text        NOT NULL REFERENCES billing_accounts (account_id),
    amount_micros   bigint      NOT NULL CHECK (amount_micros >= 0),
    granted_seconds integer     NOT NULL,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (call_id, leg)
);
CREATE INDEX reservations_expiry ON reservations (expires_at);

-- The ledger: every change of a balance. A charge's reference is
-- "<call id>/<leg>", so settling a leg twice is refused by the unique key.
CREATE TABLE ledger (
    id                   bigserial   PRIMARY KEY,
    account_id           text        NOT NULL,
    kind                 text        NOT NULL CHECK (kind IN ('TOP_UP', 'CHARGE')),
    amount_micros        bigint      NOT NULL,
    balance_after_micros bigint      NOT NULL,
    reference            text        NOT NULL,
    description          text        NOT NULL DEFAULT '',
    call_id              text        NOT NULL DEFAULT '',
    leg                  text        NOT NULL DEFAULT '',
    billed_seconds       integer     NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, reference)
);
CREATE INDEX ledger_account_id ON ledger (account_id, id DESC);

-- Blocked prefixes; account_id '' is the whole installation.
CREATE TABLE blocked_prefixes (
    account_id text        NOT NULL DEFAULT '',
    prefix     text        NOT NULL CHECK (prefix ~ '^[0-9]{1,15}$'),
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, prefix)
);
