-- infra.assets_status: each streetlight and manhole cover per Shanghai local day: last state,
-- reports, faults raised and cleared, a lamp's energy, a cover's battery, tilt and water level.
-- requires: stg_streetlights, stg_manhole_covers
-- A message received twice counts once. "Last" means the latest event time of the day (ties
-- broken by message id, so the same messages always give the same row).
CREATE OR REPLACE TABLE mart_infra_assets_status AS
WITH lamp_messages AS (
    SELECT *, CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS day
    FROM stg_streetlights
    QUALIFY row_number() OVER (
        PARTITION BY community_id, msg_id ORDER BY received_at, _batch_id
    ) = 1
),
cover_messages AS (
    SELECT *, CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS day
    FROM stg_manhole_covers
    QUALIFY row_number() OVER (
        PARTITION BY community_id, msg_id ORDER BY received_at, _batch_id
    ) = 1
),
-- The lamp's meter is cumulative: a day used what the meter gained between consecutive
-- readings, each gain counted on the day of the later reading (so the night before midnight
-- is not lost). A meter reset would be a negative gain: it counts nothing.
lamp_energy AS (
    -- Summed as DECIMAL: exact, so the day's total does not depend on the order rows arrive in.
    SELECT
        community_id,
        device_id,
        day,
        CAST(round(sum(CASE WHEN gain > 0 THEN CAST(gain AS DECIMAL(18, 6)) ELSE 0 END), 3) AS DOUBLE) AS energy_kwh
    FROM (
        SELECT
            community_id,
            device_id,
            day,
            energy_kwh - lag(energy_kwh) OVER (
                PARTITION BY community_id, device_id ORDER BY event_time, msg_id
            ) AS gain
        FROM lamp_messages
        WHERE kind = 'telemetry' AND energy_kwh IS NOT NULL
    )
    GROUP BY ALL
),
lamps AS (
    SELECT
        community_id,
        day,
        'streetlight' AS asset_type,
        device_id,
        CAST(NULL AS VARCHAR) AS cover_type,
        first(lamp_state ORDER BY event_time DESC, msg_id DESC)
            FILTER (WHERE kind = 'telemetry' AND lamp_state IS NOT NULL) AS state,
        max(event_time) FILTER (WHERE kind = 'telemetry') AS last_report_at,
        count(*) FILTER (WHERE kind = 'telemetry') AS reports,
        count(*) FILTER (WHERE kind = 'alarm' AND alarm_state = 'raised') AS faults_raised,
        count(*) FILTER (WHERE kind = 'alarm' AND alarm_state = 'cleared') AS faults_cleared,
        string_agg(DISTINCT fault_code, ',' ORDER BY fault_code)
            FILTER (WHERE kind = 'alarm' AND alarm_state = 'raised') AS fault_types,
        first(brightness_pct ORDER BY event_time DESC, msg_id DESC)
            FILTER (WHERE kind = 'telemetry' AND brightness_pct IS NOT NULL) AS brightness_pct,
        CAST(NULL AS BIGINT) AS battery_pct,
        CAST(NULL AS DOUBLE) AS tilt_deg_max,
        CAST(NULL AS DOUBLE) AS water_level_cm_max
    FROM lamp_messages
    GROUP BY community_id, day, device_id
),
covers AS (
    SELECT
        community_id,
        day,
        'manhole_cover' AS asset_type,
        device_id,
        first(cover_type ORDER BY event_time DESC, msg_id DESC) AS cover_type,
        first(cover_state ORDER BY event_time DESC, msg_id DESC)
            FILTER (WHERE kind = 'status' AND cover_state IS NOT NULL) AS state,
        max(event_time) FILTER (WHERE kind = 'status') AS last_report_at,
        count(*) FILTER (WHERE kind = 'status') AS reports,
        count(*) FILTER (WHERE kind = 'alarm' AND alarm_state = 'raised') AS faults_raised,
        count(*) FILTER (WHERE kind = 'alarm' AND alarm_state = 'cleared') AS faults_cleared,
        string_agg(DISTINCT alarm_type, ',' ORDER BY alarm_type)
            FILTER (WHERE kind = 'alarm' AND alarm_state = 'raised') AS fault_types,
        CAST(NULL AS BIGINT) AS brightness_pct,
        first(battery_pct ORDER BY event_time DESC, msg_id DESC) FILTER (WHERE battery_pct IS NOT NULL) AS battery_pct,
        max(tilt_deg) AS tilt_deg_max,
        max(water_level_cm) AS water_level_cm_max
    FROM cover_messages
    GROUP BY community_id, day, device_id
)
SELECT *
FROM lamps
LEFT JOIN lamp_energy USING (community_id, device_id, day)
UNION ALL BY NAME
SELECT *, CAST(NULL AS DOUBLE) AS energy_kwh
FROM covers
ORDER BY community_id, day, asset_type, device_id;
