-- Sign-in throttle (api/throttle.py), in place of the per-user lockout: one leaky bucket of
-- failed sign-ins per key — a client address, an account name from one address, an account
-- name from anywhere. Keyed by the name as typed (hashed), whether or not such a user exists,
-- so the throttle answers alike for known and unknown names; shared by every API process.
CREATE TABLE sign_in_throttle (
    key        text PRIMARY KEY,              -- 'address:<ip>', 'pair:<h>@<ip>', 'account:<h>'
    level      double precision NOT NULL,     -- failures not yet drained
    updated_at timestamptz NOT NULL,
    refused    integer NOT NULL DEFAULT 0     -- attempts refused since the bucket last had room
);
CREATE INDEX sign_in_throttle_updated ON sign_in_throttle (updated_at);

-- The lockout is gone: ten wrong passwords locked a nurse out for 15 minutes, whoever typed them.
ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;
