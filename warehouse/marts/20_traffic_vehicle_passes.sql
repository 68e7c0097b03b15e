-- traffic.vehicle_passes: each pass once (the latest version of each record), Shanghai local day.
-- requires: stg_vehicle_passes
-- plate_no is the staging token; the columns plate_no_<treatment>_<consumer> that
-- de-identification made for entitled consumers (e.g. plate_no_sealed_public_security)
-- come through `* EXCLUDE`, and the publisher gives each only to its consumer.
-- The vendor's record id stays behind: it would point back into the vendor's database.
CREATE OR REPLACE TABLE mart_traffic_vehicle_passes AS
WITH latest AS (
    SELECT *
    FROM stg_vehicle_passes
    QUALIFY row_number() OVER (
        PARTITION BY community_id, record_id ORDER BY updated_at DESC, _batch_id DESC
    ) = 1
)
SELECT
    * EXCLUDE (record_id, park_code, gate_name, plate_color, updated_at, fee_fen, _batch_id, plate_no_token),
    CAST(timezone('Asia/Shanghai', pass_time) AS DATE) AS day,
    plate_no_token AS plate_no,
    plate_color = 'green' AS new_energy
FROM latest
ORDER BY community_id, pass_time, gate_code, direction, plate_no;
