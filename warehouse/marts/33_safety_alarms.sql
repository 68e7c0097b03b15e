-- safety.alarms: one row per alarm with its lifecycle (raised → acknowledged → cleared), from
-- the relay's lifecycle events (the interface agreed between the relay, #7, and this mart, #5).
-- requires: stg_alarm_lifecycle
-- An event recorded twice counts once. "Latest" is by event time, then the relay's recording
-- order, then event id, so the same events always give the same row. The room comes as the
-- staging token (room_no) plus whatever per-consumer columns de-identification made from the
-- raw room (room_no_sealed_<consumer>): the publisher gives each only to its consumer.
CREATE OR REPLACE TABLE mart_safety_alarms AS
WITH events AS (
    SELECT *
    FROM stg_alarm_lifecycle
    QUALIFY row_number() OVER (
        PARTITION BY community_id, event_id ORDER BY recorded_at DESC, _batch_id DESC
    ) = 1
),
alarms AS (
    SELECT
        community_id,
        alarm_id,
        first(family ORDER BY event_time, recorded_at, event_id) AS family,
        first(category ORDER BY event_time, recorded_at, event_id) AS category,
        ['low', 'medium', 'high', 'critical'][
            max(list_position(['low', 'medium', 'high', 'critical'], severity))
        ] AS severity,
        first(state ORDER BY event_time DESC, recorded_at DESC, event_id DESC) AS state,
        -- The relay's time of the raise; the device's own time only while the raise is not loaded.
        coalesce(min(event_time) FILTER (WHERE state = 'raised'), min(detected_at)) AS raised_at,
        min(event_time) FILTER (WHERE state = 'acknowledged') AS acknowledged_at,
        first(actor ORDER BY event_time, recorded_at, event_id) FILTER (WHERE state = 'acknowledged')
            AS acknowledged_by,
        min(event_time) FILTER (WHERE state = 'cleared') AS cleared_at,
        coalesce(bool_or(state = 'escalated'), false) AS escalated,
        count(*) FILTER (WHERE state = 'updated') AS updates,
        first(building ORDER BY event_time, recorded_at, event_id) FILTER (WHERE building IS NOT NULL) AS building,
        first(unit ORDER BY event_time, recorded_at, event_id) FILTER (WHERE unit IS NOT NULL) AS unit,
        -- An in-home alarm's household token: the publisher checks its consent where a policy
        -- sends the category on consent (never published itself).
        first(household ORDER BY event_time, recorded_at, event_id) FILTER (WHERE household IS NOT NULL)
            AS household
    FROM events
    GROUP BY community_id, alarm_id
),
rooms AS (
    SELECT
        community_id,
        alarm_id,
        first(COLUMNS('^room_no_(token|sealed_.+)$') ORDER BY event_time, recorded_at, event_id)
    FROM events
    WHERE room_no_token IS NOT NULL
    GROUP BY community_id, alarm_id
)
SELECT
    alarms.community_id,
    CAST(timezone('Asia/Shanghai', alarms.raised_at) AS DATE) AS day,
    alarms.* EXCLUDE (community_id),
    (epoch_us(alarms.acknowledged_at) - epoch_us(alarms.raised_at)) // 1000000 AS response_seconds,
    (epoch_us(alarms.cleared_at) - epoch_us(alarms.raised_at)) // 1000000 AS resolution_seconds,
    rooms.room_no_token AS room_no,
    rooms.* EXCLUDE (community_id, alarm_id, room_no_token)
FROM alarms
LEFT JOIN rooms ON rooms.community_id = alarms.community_id AND rooms.alarm_id = alarms.alarm_id
ORDER BY alarms.community_id, alarms.raised_at, alarms.alarm_id;
