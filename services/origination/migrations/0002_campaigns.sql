-- Click-to-call campaigns. The settings are the API's Campaign message
-- (protojson, without the output-only fields), so a new setting needs no
-- migration; what is queried or unique has a column of its own.
CREATE TABLE campaigns (
    id          uuid        PRIMARY KEY,
    account_id  text        NOT NULL,
    name        text        NOT NULL,
    public_key  text        NOT NULL UNIQUE,
    settings    jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

-- The company's one-click callbacks of failed campaign calls: one per
-- failed call (a forced second callback replaces the link).
CREATE TABLE campaign_callbacks (
    failed_call_id   text        PRIMARY KEY,
    campaign_id      uuid        NOT NULL,
    account_id       text        NOT NULL,
    callback_call_id text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_callbacks_campaign ON campaign_callbacks (campaign_id, created_at);
