-- The agents of AGENTS and PREDICTIVE campaigns. Only what an agent is
-- lives here; what it is doing (logged in, ready, on a call) is shared
-- state in Redis (agentstate.go).

-- An agent: a name and the endpoint that is its phone, each unique in the
-- account. logins counts its logins: the n of each session call's
-- idempotency key (agent:<id>:<n>), so a key is never reused, even after
-- Redis lost its state.
CREATE TABLE agents (
    id          uuid        PRIMARY KEY,
    account_id  text        NOT NULL,
    name        text        NOT NULL,
    endpoint_id text        NOT NULL,
    wrap_up_s   integer     NOT NULL DEFAULT 10 CHECK (wrap_up_s BETWEEN 0 AND 3600),
    logins      bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name),
    UNIQUE (account_id, endpoint_id)
);

-- The campaigns whose calls an agent takes. Deleting a campaign takes it
-- off its agents.
CREATE TABLE agent_campaigns (
    agent_id    uuid NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    campaign_id uuid NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, campaign_id)
);
CREATE INDEX agent_campaigns_campaign ON agent_campaigns (campaign_id, agent_id);
