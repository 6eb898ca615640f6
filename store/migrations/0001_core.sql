-- Core administrative data: who is monitored, which devices exist, which device measured
-- whom and when. A reading belongs to the patient its device was assigned to at the
-- reading's (event) time, so assignments are intervals, never overwritten.

CREATE TABLE patients (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    birth_date   date,
    programs     text[] NOT NULL DEFAULT '{}' CHECK (programs <@ ARRAY[
                     'heart_failure', 'copd', 'hypertension', 'diabetes',
                     'post_surgical_rehab', 'wound_care', 'oncology']::text[]),
    care_team    text,
    -- NEWS2 SpO2 scale 2 applies only to patients a clinician has confirmed as hypercapnic.
    hypercapnic  boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    device_id          text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    model              text,
    mqtt_password_hash text,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_assignments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (device_id),
    patient_id  uuid NOT NULL REFERENCES patients (id),
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
-- At most one open assignment per device; overlaps are prevented by store.enrolment, which
-- closes the open interval in the same transaction that opens the next one.
CREATE UNIQUE INDEX device_assignments_one_open ON device_assignments (device_id)
    WHERE valid_to IS NULL;
CREATE INDEX device_assignments_device_from ON device_assignments (device_id, valid_from);
CREATE INDEX device_assignments_patient ON device_assignments (patient_id);

-- Message ids already processed, per device: what makes a broker redelivery or a device's
-- resend harmless, across restarts and across several ingest workers.
CREATE TABLE ingested_messages (
    device_id   text NOT NULL,
    msg_id      text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, msg_id)
);
CREATE INDEX ingested_messages_received ON ingested_messages (received_at);

-- Everything the ingest could not store, with the raw bytes and a machine-readable reason.
-- reading_index is set when only one reading of an otherwise good message was refused.
CREATE TABLE quarantine (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    topic         text NOT NULL,
    device_id     text,
    msg_id        text,
    reading_index integer,
    reason        text NOT NULL,
    detail        text NOT NULL,
    payload       bytea NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received_at);
CREATE INDEX quarantine_reason ON quarantine (reason, received_at);
