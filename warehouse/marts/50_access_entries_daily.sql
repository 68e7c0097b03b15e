-- access.entries_daily: door openings per building entrance, opening method and Shanghai local day.
-- requires: stg_door_access
-- The vendor's export of a day may be dropped again, corrected: each record counts once, from
-- the latest batch. Refused attempts (result = failure) are counted apart, never as entries.
-- A person with no type recorded counts among `other_entries` with staff, so that
-- entries = resident_entries + visitor_entries + other_entries always holds (k-anonymity
-- relies on it to keep suppressed cells unrecoverable).
CREATE OR REPLACE TABLE mart_access_entries_daily AS
WITH latest AS (
    SELECT *
    FROM stg_door_access
    QUALIFY row_number() OVER (PARTITION BY community_id, record_id ORDER BY _batch_id DESC) = 1
)
SELECT
    community_id,
    CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS day,
    building,
    unit,
    method,
    count(*) FILTER (WHERE result = 'success') AS entries,
    count(*) FILTER (WHERE result = 'success' AND person_type IN ('owner', 'family', 'tenant')) AS resident_entries,
    count(*) FILTER (WHERE result = 'success' AND person_type = 'visitor') AS visitor_entries,
    count(*) FILTER (WHERE result = 'success' AND coalesce(person_type, 'staff') = 'staff') AS other_entries,
    count(*) FILTER (WHERE result = 'failure') AS refused
FROM latest
GROUP BY ALL
ORDER BY community_id, day, building, unit, method;
