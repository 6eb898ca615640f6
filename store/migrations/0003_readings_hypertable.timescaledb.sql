-- TimescaleDB only: readings become a hypertable of weekly chunks, compressed per patient and
-- type (the shape every query takes). Policies (compression age, retention) are applied by
-- `homecare migrate` from the settings after the migrations, so they stay configurable.
SELECT create_hypertable('readings', by_range('time', INTERVAL '7 days'));
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id, type',
    timescaledb.compress_orderby = 'time DESC'
);
