-- The dialer's schema: outbound campaigns, their recipient lists and
-- records, every attempt, and the do-not-call lists.

-- A campaign. Its settings are the API's Campaign message (protojson,
-- without the output-only fields); status and run are columns because the
-- engine queries them. run counts the campaign's runs: starting a FINISHED
-- or CANCELLED campaign begins a new one with every record ready again.
CREATE TABLE campaigns (
    id          uuid        PRIMARY KEY,
    account_id  text        NOT NULL,
    name        text        NOT NULL,
    status      smallint    NOT NULL,              -- CampaignStatus
    settings    jsonb       NOT NULL,
    run         integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    UNIQUE (account_id, name)
);
CREATE INDEX campaigns_account ON campaigns (account_id, created_at DESC, id);
CREATE INDEX campaigns_running ON campaigns (id) WHERE status = 2;

-- A recipient list: the CSV's header, its import's state and counts.
CREATE TABLE lists (
    id           uuid        PRIMARY KEY,
    campaign_id  uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    account_id   text        NOT NULL,
    name         text        NOT NULL,
    account_code text        NOT NULL DEFAULT '',
    active       boolean     NOT NULL DEFAULT true,
    columns      text[]      NOT NULL DEFAULT '{}',
    status       smallint    NOT NULL,              -- ListStatus
    records      bigint      NOT NULL DEFAULT 0,
    rejected     bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lists_campaign ON lists (campaign_id, created_at);

-- A recipient: one row of a list. status is the spec's name (ready,
-- running, talking, answered, busy, noanswer, failed, answmachine, dnc,
-- expired, cancel); final says whether the run is done with it (a busy
-- record with attempts left is not final: it waits for next_at). A record
-- being dialed is leased (lease_owner, lease_until) by one dialer replica,
-- which renews the lease while the call lives.
CREATE TABLE records (
    id              bigserial   PRIMARY KEY,
    campaign_id     uuid        NOT NULL,
    list_id         uuid        NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    line            bigint      NOT NULL,
    raw             text        NOT NULL,
    numbers         text[]      NOT NULL,
    fields          jsonb       NOT NULL DEFAULT '{}',
    schedule_at     timestamptz,
    schedule_ext    text        NOT NULL DEFAULT '',
    run             integer     NOT NULL DEFAULT 0,
    status          text        NOT NULL DEFAULT 'ready',
    final           boolean     NOT NULL DEFAULT false,
    tries           integer     NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT '-infinity',
    lease_owner     text        NOT NULL DEFAULT '',
    lease_until     timestamptz,
    call_id         text        NOT NULL DEFAULT '',
    last_attempt_at timestamptz,
    last_duration_s integer     NOT NULL DEFAULT 0,
    tags            text[]      NOT NULL DEFAULT '{}'
);
-- What the engine claims: a campaign's records not final, not being
-- dialed, due.
CREATE INDEX records_due ON records (campaign_id, next_at) WHERE NOT final AND status NOT IN ('running', 'talking');
-- What is being dialed (the concurrency cap, leases to renew or recover).
CREATE INDEX records_live ON records (campaign_id) WHERE status IN ('running', 'talking');
CREATE INDEX records_list ON records (list_id, line);
CREATE INDEX records_campaign ON records (campaign_id, id);
CREATE UNIQUE INDEX records_call ON records (call_id) WHERE call_id <> '';

-- Every attempt of every run.
CREATE TABLE attempts (
    call_id     text        PRIMARY KEY,
    record_id   bigint      NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    campaign_id uuid        NOT NULL,
    run         integer     NOT NULL,
    n           integer     NOT NULL,             -- the record's try, from 1
    number      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    outcome     text        NOT NULL DEFAULT '',  -- the spec's status of this attempt
    hangup_cause text       NOT NULL DEFAULT '',
    billsec     integer     NOT NULL DEFAULT 0
);
CREATE INDEX attempts_record ON attempts (record_id, n);

-- Do-not-call: scope '' is the account's list, otherwise a campaign's id.
CREATE TABLE dnc (
    account_id text        NOT NULL,
    scope      text        NOT NULL DEFAULT '',
    number     text        NOT NULL,
    reason     text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, scope, number)
);
CREATE INDEX dnc_number ON dnc (account_id, number);
