-- env.air_quality_hourly: each environment station's readings per hour (Shanghai local day).
-- requires: stg_environment
-- A message the collector received twice (an MQTT QoS 1 redelivery, a re-read window) counts
-- once. Means are rounded so that the order DuckDB happens to sum in never changes a byte.
-- Noise is averaged as sound energy (LAeq), the way sound levels add, not as plain decibels.
CREATE OR REPLACE TABLE mart_env_air_quality_hourly AS
WITH readings AS (
    SELECT *
    FROM stg_environment
    QUALIFY row_number() OVER (
        PARTITION BY community_id, msg_id ORDER BY received_at, _batch_id
    ) = 1
)
SELECT
    community_id,
    CAST(timezone('Asia/Shanghai', date_trunc('hour', event_time)) AS DATE) AS day,
    date_trunc('hour', event_time) AS hour_start,
    device_id,
    -- A station moved within the hour is reported where it stood last.
    first(location ORDER BY event_time DESC, msg_id DESC) AS location,
    count(*) AS readings,
    round(avg(pm25), 1) AS pm25_avg,
    max(pm25) AS pm25_max,
    round(avg(pm10), 1) AS pm10_avg,
    max(pm10) AS pm10_max,
    round(10 * log10(avg(pow(10, noise_db / 10))), 1) AS noise_laeq_db,
    max(noise_db) AS noise_lamax_db,
    round(avg(temperature_c), 1) AS temperature_avg_c,
    round(avg(humidity_pct), 1) AS humidity_avg_pct
FROM readings
GROUP BY ALL
ORDER BY community_id, device_id, hour_start;
