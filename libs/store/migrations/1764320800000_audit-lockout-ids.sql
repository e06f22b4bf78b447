-- Up Migration

-- audit_lockouts_and_attacks gains lock_id, mode and level (appended, so CREATE OR REPLACE
-- keeps the view, its grants and every query that names the old columns). Without lock_id
-- an analyst could tie a lift to its lockout only by scope, key and time: "the first lift
-- of that key afterwards", which picks a later lockout's lift when this one expired
-- unannounced, and could not tell that the second `lockout` row of a lock is the same
-- lockout widened (announced again, same lockId, a new event id), so counting rows counted
-- it twice. mode tells a hard lock (deny) from the forced second factor
-- (force_second_factor), which lets the user in. Events without these fields (older
-- detectors) give nulls.
CREATE OR REPLACE VIEW audit_lockouts_and_attacks AS
SELECT occurred_at,
       event_id,
       CASE type
         WHEN 'twofold.lockout.imposed' THEN 'lockout'
         WHEN 'twofold.lockout.lifted' THEN 'lift'
         ELSE 'attack'
       END AS kind,
       event->'data'->>'scope' AS scope,
       event->'data'->>'key' AS key,
       username,
       ip,
       event->'data'->>'rule' AS rule,
       CASE WHEN jsonb_typeof(event->'data'->'failures') = 'number'
            THEN (event->'data'->>'failures')::numeric END AS failures,
       CASE WHEN jsonb_typeof(event->'data'->'until') = 'string'
            THEN (event->'data'->>'until')::timestamptz END AS locked_until,
       event->'data'->>'by' AS lifted_by,
       event->'data'->>'kind' AS attack_kind,
       event->'data'->'evidence' AS evidence,
       source,
       coalesce(event->'data'->>'lockId', event->'data'->'evidence'->>'lockId') AS lock_id,
       event->'data'->>'mode' AS mode,
       CASE WHEN jsonb_typeof(event->'data'->'level') = 'number'
            THEN (event->'data'->>'level')::numeric END AS level
  FROM audit_events
 WHERE type IN ('twofold.lockout.imposed', 'twofold.lockout.lifted', 'twofold.attack.detected');
COMMENT ON VIEW audit_lockouts_and_attacks IS
  'Lockouts imposed (kind lockout; locked_until null = permanent; a widened lockout is announced again with the same lock_id) and lifted (kind lift, lifted_by expiry or admin, lock_id of the lockout lifted), and attacks detected (kind attack: credential_stuffing, password_spraying, brute_force; lock_id of the lockout that answered it). mode: deny or force_second_factor.';

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'twofold_analyst') THEN
    GRANT SELECT ON audit_lockouts_and_attacks TO twofold_analyst;
  END IF;
END $$;

-- Down Migration
-- A view's columns cannot be removed by CREATE OR REPLACE: drop it and create it as it was.
DROP VIEW IF EXISTS audit_lockouts_and_attacks;
CREATE VIEW audit_lockouts_and_attacks AS
SELECT occurred_at,
       event_id,
       CASE type
         WHEN 'twofold.lockout.imposed' THEN 'lockout'
         WHEN 'twofold.lockout.lifted' THEN 'lift'
         ELSE 'attack'
       END AS kind,
       event->'data'->>'scope' AS scope,
       event->'data'->>'key' AS key,
       username,
       ip,
       event->'data'->>'rule' AS rule,
       CASE WHEN jsonb_typeof(event->'data'->'failures') = 'number'
            THEN (event->'data'->>'failures')::numeric END AS failures,
       CASE WHEN jsonb_typeof(event->'data'->'until') = 'string'
            THEN (event->'data'->>'until')::timestamptz END AS locked_until,
       event->'data'->>'by' AS lifted_by,
       event->'data'->>'kind' AS attack_kind,
       event->'data'->'evidence' AS evidence,
       source
  FROM audit_events
 WHERE type IN ('twofold.lockout.imposed', 'twofold.lockout.lifted', 'twofold.attack.detected');
COMMENT ON VIEW audit_lockouts_and_attacks IS
  'Lockouts imposed (kind lockout; locked_until null = permanent) and lifted (kind lift, lifted_by expiry or admin), and attacks detected (kind attack: credential_stuffing, password_spraying, brute_force).';
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'twofold_analyst') THEN
    GRANT SELECT ON audit_lockouts_and_attacks TO twofold_analyst;
  END IF;
END $$;
