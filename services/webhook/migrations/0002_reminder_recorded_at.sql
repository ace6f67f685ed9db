-- When the webhook service recorded the failed call, on its own clock: a
-- reminder falls due, and a later call reaching the party clears it, by
-- this clock rather than by the switch's event times, which may come from
-- another clock (a simulator's scaled one, a node's drifting one).
ALTER TABLE reminders ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT now();
