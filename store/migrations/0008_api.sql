-- API (api/): who may sign in, which care team they work in, their tokens, and nurses' notes on
-- alerts. Secrets are never stored in clear: passwords as argon2id hashes (slow on purpose),
-- tokens as the SHA-256 of a 256-bit random secret (a fast hash is enough for a secret that
-- cannot be guessed; it is what makes a stolen table useless).

-- Care teams. patients.care_team (text, 0001) stays the team key: the alerts stage already
-- routes on it. No foreign key from patients, so stages that enrol patients on their own (the
-- simulator, benchmarks) keep working; the API accepts only teams listed here.
CREATE TABLE care_teams (
    id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Times are stored in UTC and shown in the team's zone (IANA name).
    time_zone  text NOT NULL DEFAULT 'America/Montreal',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO care_teams (id, name)
    SELECT DISTINCT care_team, care_team FROM patients
    WHERE care_team IS NOT NULL AND care_team ~ '^[A-Za-z0-9._-]{1,64}$';
CREATE INDEX patients_care_team ON patients (care_team, display_name, id);

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username        text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9._@-]{1,64}$'),
    display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    role            text NOT NULL CHECK (role IN ('nurse', 'physician', 'analyst', 'admin')),
    password_hash   text,               -- NULL: signs in with tokens only (e.g. a CLI user)
    locale          text NOT NULL DEFAULT 'fr-CA' CHECK (locale IN ('fr-CA', 'en')),
    time_zone       text NOT NULL DEFAULT 'America/Montreal',
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,        -- too many failed sign-ins: refused until then
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE care_team_members (
    care_team  text NOT NULL REFERENCES care_teams (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    added_by   text NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (care_team, user_id)
);
CREATE INDEX care_team_members_user ON care_team_members (user_id);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      uuid NOT NULL REFERENCES users (id),
    kind         text NOT NULL CHECK (kind IN ('api', 'session')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Nurses' notes on an alert (beside the resolution note kept on the alert itself).
CREATE TABLE alert_notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   bigint NOT NULL REFERENCES alerts (id),
    author     text NOT NULL,
    body       text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_notes_alert ON alert_notes (alert_id, id);

-- Keys the API derives values from, created once by the first API process (e.g. the key of the
-- stable pseudonyms analysts see), so every API process derives the same values.
CREATE TABLE api_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Rule packs activated through the API: the exact YAML, who activated it, when. The packs
-- directory the workers hot-reload stays the source the workers read; this is its history.
CREATE TABLE rule_pack_activations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pack         text NOT NULL,
    version      integer NOT NULL,
    content      text NOT NULL,
    sha256       text NOT NULL,
    activated_by text NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rule_pack_activations_pack ON rule_pack_activations (pack, id);

-- The audit log is read by subject (who saw this patient, 0005), by actor, and by id (newest first).
CREATE INDEX audit_log_actor ON audit_log (actor, at);
