-- Readings: one row per measurement, in the canonical unit, with what the device sent kept
-- beside it. `time` is the event (measurement) time; `received_at` is when ingest stored it.
CREATE TABLE readings (
    time           timestamptz NOT NULL,
    patient_id     uuid NOT NULL,
    device_id      text NOT NULL,
    type           text NOT NULL,
    value          double precision NOT NULL,
    unit           text NOT NULL,
    original_value double precision NOT NULL,
    original_unit  text NOT NULL,
    msg_id         text NOT NULL,
    received_at    timestamptz NOT NULL,
    on_oxygen      boolean,
    consciousness  text CHECK (consciousness IN ('A', 'C', 'V', 'P', 'U'))
);
-- A device measures one value of a type at one instant: the same (device, type, time) under
-- another msg_id is a duplicate the ingest reports instead of storing twice.
CREATE UNIQUE INDEX readings_device_type_time ON readings (device_id, type, time);
CREATE INDEX readings_patient_type_time ON readings (patient_id, type, time DESC);
