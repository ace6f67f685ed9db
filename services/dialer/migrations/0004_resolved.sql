-- When the dialer learnt an attempt's outcome for pacing, on its own clock
-- (as started_at): the answer of a person (the call goes on) or the end of a
-- call nobody answered. Delays measured between the two never mix the
-- dialer's clock with the switch's.
ALTER TABLE attempts ADD COLUMN resolved_at timestamptz;
CREATE INDEX attempts_campaign_resolved ON attempts (campaign_id, resolved_at) WHERE resolved_at IS NOT NULL;
