-- Accounts (the customers of an installation) and their API keys.
-- Applied by store.Migrate with search_path = gateway.

CREATE TABLE accounts (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Also the carrier-compatible clickToDial username.
    name         text        NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]{3,64}$'),
    status       text        NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    -- Networks the account's keys may be used from; empty: anywhere.
    ip_allowlist cidr[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Names are unique regardless of case: "Acme" and "acme" would be the same
-- clickToDial username to a person reading a CRM's settings.
CREATE UNIQUE INDEX accounts_name_key ON accounts (lower(name));

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text        NOT NULL DEFAULT '',
    -- A few leading characters of the secret, shown to tell keys apart.
    prefix       text        NOT NULL,
    -- SHA-256 of the whole secret. Generated keys carry 200 random bits, so a
    -- fast hash is as safe as a slow one and lets authentication be a single
    -- indexed lookup.
    secret_hash  bytea       NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_account_created ON api_keys (account_id, created_at DESC, id DESC);
