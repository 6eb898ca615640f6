-- Anomaly model registry (rules/registry.py): every fitted anomaly model the rules stage may
-- judge with, personal (one patient) or cohort (one program), with what it was trained on and
-- the event time from which it judges. Append-only: a model judges the instants at or after
-- its in_force_from until a newer version of the same kind and subject is in force, and a
-- replay must pick the same model for an instant as the live pass did, so a row is never
-- changed or removed — a bad model is superseded by a newer version, not edited.
CREATE TABLE anomaly_models (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id         text NOT NULL,             -- digest of the fitted numbers (ModelInfo)
    kind             text NOT NULL,             -- detector kind, e.g. personal_residual
    detector_version integer NOT NULL,          -- the detector code's model format version
    scope            text NOT NULL CHECK (scope IN ('personal', 'cohort')),
    patient_id       uuid REFERENCES patients (id),   -- personal models
    program          text,                            -- cohort models
    version          integer NOT NULL CHECK (version >= 1),  -- per kind and subject: 1, 2, …
    trained_from     timestamptz NOT NULL,      -- event time of the first training instant
    trained_until    timestamptz NOT NULL,      -- event time of the last training instant
    instants         integer NOT NULL,
    data_digest      text NOT NULL,             -- sha256 of the training feature rows
    metrics          jsonb NOT NULL DEFAULT '{}',
    blob             bytea NOT NULL,            -- canonical JSON with its own digest, never pickle
    in_force_from    timestamptz NOT NULL,      -- event time from which it judges
    created_at       timestamptz NOT NULL DEFAULT now(),
    trained_by       text NOT NULL,             -- which process and code trained it
    CHECK ((scope = 'personal' AND patient_id IS NOT NULL AND program IS NULL)
        OR (scope = 'cohort' AND program IS NOT NULL AND patient_id IS NULL)),
    CHECK (trained_until >= trained_from),
    CHECK (in_force_from > trained_until),
    -- a cohort of one patient fits the very numbers of that patient's own model
    UNIQUE (scope, model_id)
);
CREATE UNIQUE INDEX anomaly_models_personal_version ON anomaly_models (patient_id, kind, version)
    WHERE scope = 'personal';
CREATE UNIQUE INDEX anomaly_models_cohort_version ON anomaly_models (program, kind, version)
    WHERE scope = 'cohort';
CREATE INDEX anomaly_models_patient ON anomaly_models (patient_id, in_force_from)
    WHERE scope = 'personal';
CREATE INDEX anomaly_models_program ON anomaly_models (program, in_force_from)
    WHERE scope = 'cohort';

CREATE FUNCTION anomaly_models_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'anomaly_models is append-only: register a newer version instead'
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER anomaly_models_append_only BEFORE UPDATE OR DELETE ON anomaly_models
    FOR EACH ROW EXECUTE FUNCTION anomaly_models_append_only();
