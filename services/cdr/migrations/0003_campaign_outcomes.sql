-- Click-to-call campaign outcomes, for the statistics the spec asks for
-- ("completed / failed user-company" per period and per campaign): which
-- leg reaches the banner's visitor, how many attempts the call took and
-- the campaign's price per completed call, all from the call snapshot.
--
-- No backfill: records written before these columns come from calls made
-- before campaigns carried visitor_leg, attempt and price_micros, so the
-- defaults (no visitor leg, one attempt, no price) are what their
-- snapshots say. Constant defaults: PostgreSQL adds the columns without
-- rewriting the table.
ALTER TABLE cdrs
    -- LegRole of the visitor's leg; 0 (unspecified) outside campaigns.
    ADD COLUMN visitor_leg  smallint NOT NULL DEFAULT 0,
    -- Attempts the call took, from 1 (a redialed call has one record).
    ADD COLUMN attempts     smallint NOT NULL DEFAULT 1,
    -- The call's price_micros as the snapshot gives it (the campaign's
    -- price per completed call, in the call's price_currency), whatever
    -- the call's status: statistics count it for COMPLETED calls only.
    ADD COLUMN price_micros bigint NOT NULL DEFAULT 0;
