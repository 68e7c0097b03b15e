-- services.fees_monthly: fee collection per month and fee type.
-- requires: stg_platform_fee_payments, stg_platform_households, stg_parking_charges
-- Three fee types, each from where it is recorded:
--   property         every household is billed every month (the platform's billing period);
--                    due = the households on the platform, paid = households with a payment
--                    for that period. The tariff is not in the data, so there is no due_fen.
--   parking_permit   residents' monthly parking paid on the platform: what was collected;
--                    who was due is not recorded, so due/unpaid/rate stay null.
--   visitor_parking  the parking vendor's charges by the Shanghai month of the exit; a
--                    refunded charge is no longer due.
-- Sums over households (amounts, rates) are published only over cells of at least 10 (or
-- 0) households, a floor above every policy's k: a rate or an amount never reveals a count
-- that k-anonymity suppresses, nor one household's payment.
-- `day` (the month's first day) is internal: the publisher selects rows by day.
CREATE OR REPLACE TABLE mart_services_fees_monthly AS
WITH payments AS (
    SELECT *
    FROM stg_platform_fee_payments
    QUALIFY row_number() OVER (PARTITION BY community_id, payment_id ORDER BY updated_at DESC, _batch_id DESC) = 1
),
households AS (
    SELECT community_id, count(*) AS households
    FROM (
        SELECT *
        FROM stg_platform_households
        QUALIFY row_number() OVER (
            PARTITION BY community_id, household_id_token ORDER BY updated_at DESC, _batch_id DESC
        ) = 1
    )
    GROUP BY community_id
),
charges AS (
    SELECT *
    FROM stg_parking_charges
    QUALIFY row_number() OVER (PARTITION BY community_id, charge_id ORDER BY updated_at DESC, _batch_id DESC) = 1
),
property AS (
    SELECT
        p.community_id,
        CAST(p.period || '-01' AS DATE) AS month,
        'property' AS fee_type,
        CAST(any_value(h.households) AS BIGINT) AS due_count,
        count(DISTINCT p.household_id_token) AS paid_count,
        CAST(NULL AS BIGINT) AS due_fen,
        CAST(sum(p.amount_fen) AS BIGINT) AS collected_fen
    FROM payments AS p
    JOIN households AS h USING (community_id)
    WHERE p.fee_type = 'property'
    GROUP BY p.community_id, p.period
),
permits AS (
    SELECT
        community_id,
        CAST(period || '-01' AS DATE) AS month,
        'parking_permit' AS fee_type,
        CAST(NULL AS BIGINT) AS due_count,
        count(DISTINCT household_id_token) AS paid_count,
        CAST(NULL AS BIGINT) AS due_fen,
        CAST(sum(amount_fen) AS BIGINT) AS collected_fen
    FROM payments
    WHERE fee_type = 'parking'
    GROUP BY community_id, period
),
visitors AS (
    SELECT
        community_id,
        CAST(date_trunc('month', timezone('Asia/Shanghai', exit_time)) AS DATE) AS month,
        'visitor_parking' AS fee_type,
        count(*) AS due_count,
        count(*) FILTER (WHERE status = 'paid') AS paid_count,
        CAST(sum(amount_fen) AS BIGINT) AS due_fen,
        CAST(coalesce(sum(paid_fen) FILTER (WHERE status = 'paid'), 0) AS BIGINT) AS collected_fen
    FROM charges
    WHERE amount_fen > 0 AND status <> 'refunded'
    GROUP BY ALL
),
fees AS (
    SELECT *, CASE WHEN due_count IS NOT NULL THEN greatest(due_count - paid_count, 0) END AS unpaid_count
    FROM (SELECT * FROM property UNION ALL SELECT * FROM permits UNION ALL SELECT * FROM visitors)
)
SELECT
    community_id,
    month,
    fee_type,
    due_count,
    paid_count,
    unpaid_count,
    CASE WHEN due_count = 0 OR due_count >= 10 THEN due_fen END AS due_fen,
    CASE WHEN paid_count = 0 OR paid_count >= 10 THEN collected_fen END AS collected_fen,
    CASE
        WHEN due_count > 0 AND (paid_count = 0 OR paid_count >= 10) AND (unpaid_count = 0 OR unpaid_count >= 10)
            THEN round(paid_count / due_count, 4)
    END AS collection_rate,
    month AS day
FROM fees
ORDER BY community_id, month, fee_type;
