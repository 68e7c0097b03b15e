-- services.repairs: each repair request, its category, response and resolution times, and
-- the resident's description as scrubbed in staging; partitioned by the Shanghai day submitted.
-- requires: stg_platform_repairs
-- Staging holds every version the hub read, so the response time is measured to the first
-- version seen past `submitted` (assigned, resolved or closed): exact to the extraction
-- cadence, never earlier than the truth. The resolution time is the platform's own.
-- Neither the household nor the platform's request id leaves: the request id would point
-- back into the platform's database.
CREATE OR REPLACE TABLE mart_services_repairs AS
WITH latest AS (
    SELECT *
    FROM stg_platform_repairs
    QUALIFY row_number() OVER (PARTITION BY community_id, request_id ORDER BY updated_at DESC, _batch_id DESC) = 1
),
responded AS (
    SELECT community_id, request_id, min(updated_at) AS first_handled
    FROM stg_platform_repairs
    WHERE status <> 'submitted'
    GROUP BY community_id, request_id
)
SELECT
    l.community_id,
    CAST(timezone('Asia/Shanghai', l.submitted_at) AS DATE) AS day,
    l.submitted_at,
    l.category,
    l.status,
    round(date_diff('second', l.submitted_at, least(r.first_handled, l.resolved_at)) / 3600.0, 2) AS response_hours,
    round(date_diff('second', l.submitted_at, l.resolved_at) / 3600.0, 2) AS resolution_hours,
    l.rating,
    l.description
FROM latest AS l
LEFT JOIN responded AS r USING (community_id, request_id)
ORDER BY l.community_id, l.submitted_at, l.category, l.description;
