-- Hourly and daily aggregates per patient and type, for the dashboard and the notebooks.
-- Real-time aggregation (materialized_only = false) keeps the newest bucket exact.
CREATE MATERIALIZED VIEW readings_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       patient_id, type,
       count(*) AS n, avg(value) AS mean, min(value) AS min_value, max(value) AS max_value
FROM readings
GROUP BY time_bucket(INTERVAL '1 hour', time), patient_id, type
WITH NO DATA;

CREATE MATERIALIZED VIEW readings_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', time) AS bucket,
       patient_id, type,
       count(*) AS n, avg(value) AS mean, min(value) AS min_value, max(value) AS max_value
FROM readings
GROUP BY time_bucket(INTERVAL '1 day', time), patient_id, type
WITH NO DATA;

-- start_offset NULL: a backlog uploaded weeks late still invalidates and refreshes its buckets.
SELECT add_continuous_aggregate_policy('readings_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('readings_daily',
    start_offset => NULL, end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour');
