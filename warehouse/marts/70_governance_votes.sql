-- governance.votes: each motion's tally and turnout, with the Merkle root over its ballots
-- (the scheme is in docs/votes.md; warehouse/merkle.py is the same in Python, and verifies).
-- requires: stg_platform_votes, stg_platform_households
-- One ballot per owner and motion, the latest. Each ballot is a leaf:
--   SHA-256(0x00 || "neuron-hub/ballot-leaf/v1" || ns(community) || ns(motion) ||
--           ns(receipt commitment) || ns(choice) || ns(area in hundredths of m²)),
--   ns(s) = "<bytes of s>:<s>,"
-- and an inner node is SHA-256(0x01 || left || right) over the raw digests. Leaves are sorted;
-- each level pairs neighbours and an unpaired last node goes up unchanged. The commitment
-- itself never leaves: the feed carries the sorted leaves and, in the same order, each
-- ballot's lookup tag SHA-256("neuron-hub/ballot-lookup/v1:" || commitment), by which the
-- hub finds the leaf of a receipt. Tallies count ballots; turnout counts households (a flat
-- with two voting owners counts once, with its area once) against the households on the platform.
-- The motion's month is that of its first ballot (Shanghai time); `day` (the month's first
-- day) is internal: the publisher selects rows by day.
CREATE OR REPLACE TABLE mart_governance_votes AS
WITH RECURSIVE
ballots AS (
    SELECT *
    FROM stg_platform_votes
    QUALIFY row_number() OVER (
        PARTITION BY community_id, motion_id, resident_id_token ORDER BY updated_at DESC, _batch_id DESC
    ) = 1
),
leaves AS (
    SELECT
        community_id,
        motion_id,
        sha256('neuron-hub/ballot-lookup/v1:' || receipt_commitment) AS lookup_tag,
        sha256(
            unhex('00')
            || encode(
                'neuron-hub/ballot-leaf/v1'
                || printf('%d:%s,', strlen(community_id), community_id)
                || printf('%d:%s,', strlen(motion_id), motion_id)
                || printf('%d:%s,', strlen(receipt_commitment), receipt_commitment)
                || printf('%d:%s,', strlen(choice), choice)
                || printf('%d:%s,', strlen(weight), weight)
            )
        ) AS leaf
    FROM (SELECT *, CAST(CAST(floor(area_m2 * 100 + 0.5) AS BIGINT) AS VARCHAR) AS weight FROM ballots)
),
tree (community_id, motion_id, level, idx, node, width) AS (
    SELECT
        community_id,
        motion_id,
        0,
        row_number() OVER (PARTITION BY community_id, motion_id ORDER BY leaf) - 1,
        leaf,
        count(*) OVER (PARTITION BY community_id, motion_id)
    FROM leaves
    UNION ALL
    SELECT
        community_id,
        motion_id,
        level + 1,
        idx // 2,
        CASE
            WHEN count(*) = 2 THEN sha256(unhex('01' || min_by(node, idx) || max_by(node, idx)))
            ELSE any_value(node)
        END,
        (width + 1) // 2
    FROM tree
    WHERE width > 1
    GROUP BY community_id, motion_id, level, idx // 2, width
),
roots AS (
    SELECT community_id, motion_id, node AS merkle_root
    FROM tree
    WHERE width = 1
),
published_leaves AS (
    SELECT
        community_id,
        motion_id,
        string_agg(leaf, ',' ORDER BY leaf) AS leaf_hashes,
        string_agg(lookup_tag, ',' ORDER BY leaf) AS lookup_tags
    FROM leaves
    GROUP BY community_id, motion_id
),
eligible AS (
    -- Areas are summed as DECIMAL (exact in any order), then given back as DOUBLE.
    SELECT
        community_id,
        count(*) AS households_eligible,
        CAST(round(sum(CAST(area_m2 AS DECIMAL(18, 3))), 2) AS DOUBLE) AS area_eligible_m2
    FROM (
        SELECT *
        FROM stg_platform_households
        QUALIFY row_number() OVER (
            PARTITION BY community_id, household_id_token ORDER BY updated_at DESC, _batch_id DESC
        ) = 1
    )
    GROUP BY community_id
),
voted AS (
    SELECT
        community_id,
        motion_id,
        count(*) AS households_voted,
        CAST(sum(CAST(area_m2 AS DECIMAL(18, 3))) AS DOUBLE) AS area_voted_m2
    FROM (SELECT community_id, motion_id, household_id_token, max(area_m2) AS area_m2 FROM ballots GROUP BY ALL)
    GROUP BY community_id, motion_id
),
tallies AS (
    SELECT
        community_id,
        motion_id,
        -- Two ballots updated at the same instant: the title chosen must not depend on row order.
        first(motion_title ORDER BY updated_at DESC, motion_title DESC) AS motion_title,
        CAST(date_trunc('month', timezone('Asia/Shanghai', min(cast_at))) AS DATE) AS month,
        CAST(timezone('Asia/Shanghai', min(cast_at)) AS DATE) AS first_ballot_day,
        CAST(timezone('Asia/Shanghai', max(cast_at)) AS DATE) AS last_ballot_day,
        count(*) AS ballots,
        count(*) FILTER (WHERE choice = 'agree') AS agree,
        count(*) FILTER (WHERE choice = 'oppose') AS oppose,
        count(*) FILTER (WHERE choice = 'abstain') AS abstain,
        CAST(round(coalesce(sum(CAST(area_m2 AS DECIMAL(18, 3))) FILTER (WHERE choice = 'agree'), 0), 2) AS DOUBLE)
            AS agree_area_m2,
        CAST(round(coalesce(sum(CAST(area_m2 AS DECIMAL(18, 3))) FILTER (WHERE choice = 'oppose'), 0), 2) AS DOUBLE)
            AS oppose_area_m2,
        CAST(round(coalesce(sum(CAST(area_m2 AS DECIMAL(18, 3))) FILTER (WHERE choice = 'abstain'), 0), 2) AS DOUBLE)
            AS abstain_area_m2
    FROM ballots
    GROUP BY community_id, motion_id
)
SELECT
    t.community_id,
    t.month,
    t.motion_id,
    t.motion_title,
    t.first_ballot_day,
    t.last_ballot_day,
    t.ballots,
    t.agree,
    t.oppose,
    t.abstain,
    t.agree_area_m2,
    t.oppose_area_m2,
    t.abstain_area_m2,
    v.households_voted,
    e.households_eligible,
    round(v.households_voted / e.households_eligible, 4) AS turnout,
    e.area_eligible_m2,
    round(v.area_voted_m2 / e.area_eligible_m2, 4) AS area_turnout,
    r.merkle_root,
    t.ballots AS leaf_count,
    p.leaf_hashes,
    p.lookup_tags,
    t.month AS day
FROM tallies AS t
JOIN voted AS v USING (community_id, motion_id)
JOIN roots AS r USING (community_id, motion_id)
JOIN published_leaves AS p USING (community_id, motion_id)
LEFT JOIN eligible AS e USING (community_id)
ORDER BY t.community_id, t.month, t.motion_id;
