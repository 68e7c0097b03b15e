-- traffic.vehicle_flow_hourly: entries and exits per gate and hour (Shanghai local day).
-- requires: stg_vehicle_passes
-- A pass may be re-sent by the vendor (a later update of the same record): the latest
-- version of each record counts, once.
CREATE OR REPLACE TABLE mart_traffic_vehicle_flow_hourly AS
WITH latest AS (
    SELECT *
    FROM stg_vehicle_passes
    QUALIFY row_number() OVER (
        PARTITION BY community_id, record_id ORDER BY updated_at DESC, _batch_id DESC
    ) = 1
)
SELECT
    community_id,
    CAST(timezone('Asia/Shanghai', pass_time) AS DATE) AS day,
    gate_code,
    date_trunc('hour', pass_time) AS hour_start,
    count(*) FILTER (WHERE direction = 'in') AS entries,
    count(*) FILTER (WHERE direction = 'out') AS exits,
    count(*) FILTER (WHERE direction = 'in' AND vehicle_type = 'resident') AS resident_entries,
    count(*) FILTER (WHERE direction = 'in' AND vehicle_type = 'visitor') AS visitor_entries,
    count(*) FILTER (WHERE direction = 'in' AND plate_color = 'green') AS new_energy_entries,
    CAST(coalesce(sum(fee_fen), 0) AS BIGINT) AS charges_fen
FROM latest
GROUP BY ALL
ORDER BY community_id, gate_code, hour_start;
