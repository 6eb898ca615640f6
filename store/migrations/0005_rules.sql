-- Rules stage. The ingest announces, in the transaction that stores readings, which patients
-- got readings and from which event time (reading_changes, an outbox); the rules stage
-- evaluates those patients and records findings. A crash between the two loses nothing: the
-- announcement stays until an evaluation has committed.
CREATE TABLE reading_changes (
    patient_id    uuid PRIMARY KEY,
    earliest_time timestamptz NOT NULL,
    version       bigint NOT NULL DEFAULT 1,
    noted_at      timestamptz NOT NULL DEFAULT now()
);

-- Findings are transitions of a rule's condition (active / cleared) at an event time. Late data
-- can change history: a finding that no longer holds is retracted (kept, with the time), never
-- deleted, because the alerts stage may already have acted on it.
CREATE TABLE findings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id    uuid NOT NULL REFERENCES patients (id),
    rule_id       text NOT NULL,
    state         text NOT NULL CHECK (state IN ('active', 'cleared')),
    severity      text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    evidence_time timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    late          boolean NOT NULL,
    summary       text NOT NULL,
    evidence      jsonb NOT NULL,
    pack          text NOT NULL,
    pack_version  integer NOT NULL,
    found_at      timestamptz NOT NULL DEFAULT now(),
    retracted_at  timestamptz
);
CREATE UNIQUE INDEX findings_current ON findings (patient_id, rule_id, evidence_time, state)
    WHERE retracted_at IS NULL;
CREATE INDEX findings_patient_time ON findings (patient_id, evidence_time);

-- How far in event time each patient has been evaluated (missing-data rules tick from here).
CREATE TABLE rule_progress (
    patient_id      uuid PRIMARY KEY REFERENCES patients (id),
    evaluated_until timestamptz NOT NULL
);

-- A clinician's threshold for one patient and one rule, as a history of intervals: a reading is
-- judged by the threshold in force at its event time, so replaying the past gives the past's
-- findings. Every change is also in audit_log.
CREATE TABLE threshold_overrides (
    patient_id uuid NOT NULL REFERENCES patients (id),
    rule_id    text NOT NULL,
    value      double precision,  -- NULL: back to the pack's threshold from valid_from on
    reason     text NOT NULL CHECK (length(reason) > 0),
    set_by     text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz,
    PRIMARY KEY (patient_id, rule_id, valid_from)
);
CREATE UNIQUE INDEX threshold_overrides_current ON threshold_overrides (patient_id, rule_id)
    WHERE valid_to IS NULL;

-- Who did or saw what, and when: one row per change (and, with the API, per read of a record).
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
