-- Endpoints: the agents' and operators' phones calls can be placed to.
CREATE TABLE endpoints (
    id               uuid        PRIMARY KEY,
    account_id       text        NOT NULL,
    name             text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('SIP_USER', 'REGISTERED_USER', 'EXTERNAL_NUMBER')),
    address          text        NOT NULL,
    caller_id_number text        NOT NULL DEFAULT '',
    ring_timeout_ms  integer     NOT NULL DEFAULT 0 CHECK (ring_timeout_ms >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);
CREATE INDEX endpoints_account_name ON endpoints (account_id, name, id);
