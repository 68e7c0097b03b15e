-- care.elderly_daily: people under care, their alerts and how fast alerts were resolved, per
-- Shanghai local day. Counts only: the publisher applies k-anonymity to every one of them.
-- requires: stg_elderly_care, stg_platform_consent
-- Only households whose latest elderly-care consent on the platform is a yes are counted (the
-- consent store's rule: the latest change wins); a withdrawal takes them out of every day at
-- the next build, and until the platform's consents are loaded nothing is built at all.
-- People are counted by their wristband messages' resident token (distinct per day). An alert
-- is one alarm id: it belongs to the day it was raised, and its response is the time from
-- raised to cleared, counted in bands (≤ 5 min, ≤ 15 min, longer, not cleared yet). A clear
-- whose raise is not loaded yet waits for it. Both breakdowns add up to `alerts` (the feed
-- declares them, so suppression keeps them from undoing each other).
CREATE OR REPLACE TABLE mart_care_elderly_daily AS
WITH consents AS (
    SELECT community_id, household_id_token, granted
    FROM stg_platform_consent
    WHERE function = 'elderly_care'
    QUALIFY row_number() OVER (
        -- Ties (two changes at one instant in one batch) resolve to a refusal, whatever the row order.
        PARTITION BY community_id, household_id_token
        ORDER BY changed_at DESC, updated_at DESC, _batch_id DESC, granted ASC
    ) = 1
),
messages AS (
    SELECT *, CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS day
    FROM stg_elderly_care AS band
    WHERE EXISTS (
        SELECT 1
        FROM consents
        WHERE consents.granted
            AND consents.community_id = band.community_id
            AND consents.household_id_token = band.household_id_token
    )
    QUALIFY row_number() OVER (
        PARTITION BY community_id, msg_id ORDER BY received_at, _batch_id
    ) = 1
),
people AS (
    SELECT community_id, day, count(DISTINCT resident_id_token) AS people_under_care
    FROM messages
    GROUP BY ALL
),
alerts AS (
    SELECT
        community_id,
        alarm_id,
        min(event_time) FILTER (WHERE alarm_state = 'raised') AS raised_at,
        min(event_time) FILTER (WHERE alarm_state = 'cleared') AS cleared_at,
        first(alarm_type ORDER BY event_time, msg_id)
            FILTER (WHERE alarm_state = 'raised' AND alarm_type IS NOT NULL) AS alarm_type,
        first(resident_id_token ORDER BY event_time, msg_id) FILTER (WHERE alarm_state = 'raised') AS resident
    FROM messages
    WHERE kind = 'alarm' AND alarm_id IS NOT NULL
    GROUP BY community_id, alarm_id
),
alert_days AS (
    SELECT
        community_id,
        CAST(timezone('Asia/Shanghai', raised_at) AS DATE) AS day,
        count(DISTINCT resident) AS people_alerted,
        count(*) AS alerts,
        count(*) FILTER (WHERE alarm_type = 'fall') AS falls,
        count(*) FILTER (WHERE alarm_type = 'sos') AS sos,
        count(*) FILTER (WHERE alarm_type IN ('heart_rate_high', 'heart_rate_low')) AS heart_rate_alerts,
        count(*) FILTER (WHERE cleared_at - raised_at <= INTERVAL 5 MINUTE) AS responses_within_5_min,
        count(*) FILTER (
            WHERE cleared_at - raised_at > INTERVAL 5 MINUTE AND cleared_at - raised_at <= INTERVAL 15 MINUTE
        ) AS responses_5_to_15_min,
        count(*) FILTER (WHERE cleared_at - raised_at > INTERVAL 15 MINUTE) AS responses_over_15_min,
        count(*) FILTER (WHERE cleared_at IS NULL) AS alerts_unresolved
    FROM alerts
    -- Only the alert types the feed breaks down, so that its parts always add up to `alerts`.
    WHERE raised_at IS NOT NULL AND alarm_type IN ('fall', 'sos', 'heart_rate_high', 'heart_rate_low')
    GROUP BY ALL
)
SELECT
    people.community_id,
    people.day,
    people.people_under_care,
    coalesce(alert_days.people_alerted, 0) AS people_alerted,
    coalesce(alert_days.alerts, 0) AS alerts,
    coalesce(alert_days.falls, 0) AS falls,
    coalesce(alert_days.sos, 0) AS sos,
    coalesce(alert_days.heart_rate_alerts, 0) AS heart_rate_alerts,
    coalesce(alert_days.responses_within_5_min, 0) AS responses_within_5_min,
    coalesce(alert_days.responses_5_to_15_min, 0) AS responses_5_to_15_min,
    coalesce(alert_days.responses_over_15_min, 0) AS responses_over_15_min,
    coalesce(alert_days.alerts_unresolved, 0) AS alerts_unresolved
FROM people
LEFT JOIN alert_days USING (community_id, day)
ORDER BY people.community_id, people.day;
