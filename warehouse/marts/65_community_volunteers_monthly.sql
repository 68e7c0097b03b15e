-- community.volunteers_monthly: volunteer sign-ups and hours per activity and Shanghai month
-- of the activity.
-- requires: stg_platform_volunteers
-- Every sign-up is in exactly one state, so signups = attended + absent + cancelled + pending
-- (k-anonymity relies on it). Hours are a sum over people: published only over at least 10
-- (or no) volunteers, a floor above every policy's k, so one person's hours never show.
-- `day` (the month's first day) is internal: the publisher selects rows by day.
CREATE OR REPLACE TABLE mart_community_volunteers_monthly AS
WITH latest AS (
    SELECT *
    FROM stg_platform_volunteers
    QUALIFY row_number() OVER (PARTITION BY community_id, signup_id ORDER BY updated_at DESC, _batch_id DESC) = 1
),
monthly AS (
    SELECT
        community_id,
        CAST(date_trunc('month', timezone('Asia/Shanghai', activity_start)) AS DATE) AS month,
        activity,
        count(*) AS signups,
        count(*) FILTER (WHERE status = 'attended') AS attended,
        count(*) FILTER (WHERE status = 'absent') AS absent,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
        count(*) FILTER (WHERE status = 'signed_up') AS pending,
        count(DISTINCT resident_id_token) FILTER (WHERE status = 'attended') AS volunteers,
        -- DECIMAL: an exact sum, whatever order the signups come in.
        coalesce(sum(CAST(hours AS DECIMAL(18, 3))) FILTER (WHERE status = 'attended'), 0) AS all_hours
    FROM latest
    GROUP BY ALL
)
SELECT
    * EXCLUDE (all_hours),
    CASE WHEN volunteers = 0 OR volunteers >= 10 THEN CAST(round(all_hours, 1) AS DOUBLE) END AS hours,
    month AS day
FROM monthly
ORDER BY community_id, month, activity;
