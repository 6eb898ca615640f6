-- Alerts stage (alerts/). Findings become alerts a nurse acts on: one unresolved alert per
-- (patient, rule) fingerprint, the condition (active / cleared) tracked apart from the handling
-- (open / acknowledged / resolved), every change recorded with who and when.

-- The alerts stage's subscription to findings. A trigger (defined here, so the rules stage knows
-- nothing of alerts) announces every patient whose findings were inserted or retracted, in the
-- rules' own transaction; an alerts worker consumes the announcement per patient under an
-- advisory lock, like the rules stage consumes reading_changes. A per-patient cursor (rather than
-- one global findings.id cursor) because a global id cursor skips rows of transactions that
-- commit out of id order, and because retractions are updates, which no id cursor sees.
CREATE TABLE alert_inbox (
    patient_id uuid PRIMARY KEY,
    version    bigint NOT NULL DEFAULT 1,
    noted_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE alert_progress (
    patient_id      uuid PRIMARY KEY REFERENCES patients (id),
    last_finding_id bigint NOT NULL
);
-- Findings that exist before this migration are history: alerts start from here.
INSERT INTO alert_progress (patient_id, last_finding_id)
    SELECT patient_id, max(id) FROM findings GROUP BY patient_id;

CREATE FUNCTION alert_inbox_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_inbox (patient_id) VALUES (NEW.patient_id)
        ON CONFLICT (patient_id) DO UPDATE SET version = alert_inbox.version + 1;
    PERFORM pg_notify('homecare_alert_inbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER findings_alert_inbox AFTER INSERT OR UPDATE OF retracted_at ON findings
    FOR EACH ROW EXECUTE FUNCTION alert_inbox_note();

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id       uuid NOT NULL REFERENCES patients (id),
    rule_id          text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status           text NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'acknowledged', 'resolved')),
    condition        text NOT NULL CHECK (condition IN ('active', 'cleared')),
    opened_at        timestamptz NOT NULL,
    evidence_time    timestamptz NOT NULL,   -- event time of the latest firing's reading
    summary          text NOT NULL,
    evidence         jsonb NOT NULL,
    news2            integer,                -- NEWS2 score of the evidence, for the queue order
    late             boolean NOT NULL,
    finding_id       bigint NOT NULL,        -- latest firing
    fired_count      integer NOT NULL DEFAULT 1,
    last_fired_at    timestamptz NOT NULL,   -- wall clock of the latest (re)firing
    last_paged_at    timestamptz,
    cleared_at       timestamptz,            -- event time the condition cleared (NULL: active)
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text,
    outcome          text,
    resolution_note  text,
    suppressed_by    text,                   -- why it is not paged (silence, inhibition, late)
    escalation_level integer NOT NULL DEFAULT 0,
    escalate_at      timestamptz,            -- next escalation deadline; NULL: none pending
    updated_at       timestamptz NOT NULL,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL AND outcome IS NOT NULL)),
    CHECK ((condition = 'cleared') = (cleared_at IS NOT NULL))
);
-- The fingerprint: at most one unresolved alert per (patient, rule), whatever races.
CREATE UNIQUE INDEX alerts_fingerprint ON alerts (patient_id, rule_id) WHERE status <> 'resolved';
CREATE INDEX alerts_patient ON alerts (patient_id, opened_at);
CREATE INDEX alerts_escalate_due ON alerts (escalate_at) WHERE escalate_at IS NOT NULL;
CREATE INDEX alerts_hold ON alerts (cleared_at) WHERE status <> 'resolved';

-- Every finding that fired an alert (its evidence history; retractions are judged from it).
CREATE TABLE alert_findings (
    alert_id   bigint NOT NULL REFERENCES alerts (id),
    finding_id bigint NOT NULL REFERENCES findings (id),
    PRIMARY KEY (alert_id, finding_id)
);
CREATE INDEX alert_findings_finding ON alert_findings (finding_id);

-- Every change of an alert, with who (a nurse's id, or system:*) and when.
CREATE TABLE alert_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id),
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('opened', 'updated', 'refired', 'cleared',
                 'acknowledged', 'resolved', 'escalated', 'suppressed', 'unsuppressed')),
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);

-- Silences: per patient and/or rule, with a reason, an author and an expiry. Matching alerts are
-- recorded but not paged. Ending one early keeps the row (ended_by).
CREATE TABLE silences (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id uuid REFERENCES patients (id),
    rule_id    text,
    reason     text NOT NULL CHECK (length(reason) > 0),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    ended_by   text,
    CHECK (patient_id IS NOT NULL OR rule_id IS NOT NULL),
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_patient ON silences (patient_id, ends_at);

-- Notifications: an outbox written in the alert's transaction, delivered by dispatchers that
-- claim due rows; retries are driven by next_attempt_at, a notification that used up its
-- attempts is dead-lettered (status 'dead') and can be replayed.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (id),
    change          text NOT NULL,
    channel         text NOT NULL,
    target          text NOT NULL,
    recipient       text NOT NULL,          -- role on the escalation chain
    body            text NOT NULL,          -- exactly what is sent (and signed)
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_alert ON notifications (alert_id);

CREATE TABLE notification_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications (id),
    at              timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('sent', 'retryable', 'permanent')),
    error           text,
    duration_ms     integer NOT NULL
);
CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id);
