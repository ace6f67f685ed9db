-- Pacing: what the predictive pacer learns from each attempt, the
-- abandonment counts of the regulators' windows, and the abandoned
-- numbers' lockout.

-- answered_at: when the recipient answered (a person or a machine);
-- connected_at: when an agent (or the endpoint) was connected; live: a
-- person answered (no machine); abandoned: no agent in time.
ALTER TABLE attempts
    ADD COLUMN answered_at  timestamptz,
    ADD COLUMN connected_at timestamptz,
    ADD COLUMN live         boolean NOT NULL DEFAULT false,
    ADD COLUMN abandoned    boolean NOT NULL DEFAULT false;
-- The pacer reads a campaign's latest ended attempts.
CREATE INDEX attempts_campaign_ended ON attempts (campaign_id, ended_at) WHERE ended_at IS NOT NULL;

-- Live answers and abandoned calls per campaign and hour: the 24-hour and
-- 30-day windows are sums of at most 721 rows, whatever the volume.
CREATE TABLE answer_counts (
    campaign_id uuid        NOT NULL,
    hour        timestamptz NOT NULL,
    answered    bigint      NOT NULL DEFAULT 0,
    abandoned   bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, hour)
);

-- A number whose call was abandoned is not dialed again by any campaign of
-- the account before until.
CREATE TABLE abandoned_numbers (
    account_id  text        NOT NULL,
    number      text        NOT NULL,
    until       timestamptz NOT NULL,
    campaign_id uuid        NOT NULL,
    PRIMARY KEY (account_id, number)
);
