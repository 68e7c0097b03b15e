-- env.air_quality_hourly: each environment station's readings per hour (Shanghai local day).
-- requires: stg_environment
-- A message the collector received twice (an MQTT QoS 1 redelivery, a re-read window) counts
-- once. Means are exact: readings are summed as DECIMAL (integer arithmetic, the same in any
-- order and on any number of threads; a float sum is not), divided once, then rounded, so a
-- rebuild from the same rows in any order gives the same bytes. Readings are taken at 0.001.
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
    round(sum(CAST(pm25 AS DECIMAL(18, 3))) / count(pm25), 1) AS pm25_avg,
    max(pm25) AS pm25_max,
    round(sum(CAST(pm10 AS DECIMAL(18, 3))) / count(pm10), 1) AS pm10_avg,
    max(pm10) AS pm10_max,
    -- Sound energy per reading is at most 1e13 (130 dB); summed at 0.001 it fits DECIMAL(38, 3).
    round(10 * log10(sum(CAST(pow(10, noise_db / 10) AS DECIMAL(38, 3))) / count(noise_db)), 1) AS noise_laeq_db,
    max(noise_db) AS noise_lamax_db,
    round(sum(CAST(temperature_c AS DECIMAL(18, 3))) / count(temperature_c), 1) AS temperature_avg_c,
    round(sum(CAST(humidity_pct AS DECIMAL(18, 3))) / count(humidity_pct), 1) AS humidity_avg_pct
FROM readings
GROUP BY ALL
ORDER BY community_id, device_id, hour_start;
