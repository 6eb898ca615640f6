-- Plain PostgreSQL: the same two aggregates as ordinary materialized views, refreshed by the
-- scheduler (store.aggregates.refresh_aggregates). date_bin with a UTC origin gives the same
-- buckets as TimescaleDB's time_bucket, so callers see identical rows on either engine.
CREATE MATERIALIZED VIEW readings_hourly AS
SELECT date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       patient_id, type,
       count(*) AS n, avg(value) AS mean, min(value) AS min_value, max(value) AS max_value
FROM readings
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX readings_hourly_key ON readings_hourly (patient_id, type, bucket);

CREATE MATERIALIZED VIEW readings_daily AS
SELECT date_bin(INTERVAL '1 day', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       patient_id, type,
       count(*) AS n, avg(value) AS mean, min(value) AS min_value, max(value) AS max_value
FROM readings
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX readings_daily_key ON readings_daily (patient_id, type, bucket);
