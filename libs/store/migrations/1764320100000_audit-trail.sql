-- Up Migration

-- The audit trail, made tamper-evident and easy to query (issue 6).

-- When chaining began: rows stored before it (by an older sink) carry no chain and are
-- reported as legacy by `audit verify`, not as tampering.
CREATE TABLE audit_chain_settings (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  chained_since timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_chain_settings DEFAULT VALUES;

-- One hash chain per (Kafka topic, Kafka partition, UTC day of the event). The consumer
-- group gives each Kafka partition one writer; the writer locks the chain's row (FOR
-- UPDATE) for the transaction, so a replica that still holds a batch after a rebalance
-- waits for the new owner and then finds its rows already stored. The head is the last
-- row's position and hash: `verify` compares it with the last stored row, so deleting
-- rows at the end is detected too.
CREATE TABLE audit_chains (
  chain_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kafka_topic text NOT NULL,
  kafka_partition integer NOT NULL,
  day date NOT NULL,
  head_seq bigint NOT NULL DEFAULT 0,
  head_hash bytea NOT NULL DEFAULT decode(repeat('00', 32), 'hex'),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kafka_topic, kafka_partition, day)
);

-- Each row's place in its chain: seq (1, 2, …), prev_hash and
-- row_hash = SHA-256(prev_hash || canonical content of the row), computed by the sink.
ALTER TABLE audit_events
  ADD COLUMN chain_id integer,
  ADD COLUMN seq bigint,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN row_hash bytea;

COMMENT ON TABLE audit_events IS
  'Every event of every twofold topic, once (key: event_id, occurred_at). Partitioned by day of occurred_at (UTC); tamper-evident hash chains per Kafka topic, partition and day.';
COMMENT ON COLUMN audit_events.occurred_at IS 'the event''s own time (CloudEvents time)';
COMMENT ON COLUMN audit_events.received_at IS 'when the audit sink stored it';
COMMENT ON COLUMN audit_events.username IS 'normalized username (the event subject); null for IP-scoped security events';
COMMENT ON COLUMN audit_events.session IS 'SHA-256 of the SSO token (never the token)';
COMMENT ON COLUMN audit_events.outcome IS 'success, failure, logout, challenge/skip/enroll/deny, locked, unlocked, attack, validated, revoked, rejected (DLQ), or the admin action';
COMMENT ON COLUMN audit_events.reason IS 'reason of a failure, decision, revocation or DLQ rejection; kind of an attack';
COMMENT ON COLUMN audit_events.event IS 'the full CloudEvents JSON (for DLQ rows: the refused bytes, base64, with the reason)';

-- Indexes. Every index is paid for on every insert, so full indexes are kept to what
-- searches need (who, from where, which session, when) and the rarer kinds of events the
-- views and investigations look for get partial indexes, which cost nothing for the bulk
-- of rows. Kept from the foundation: the key, (username, occurred_at), (ip, occurred_at).
-- verify walks each chain in order.
CREATE INDEX audit_events_chain_idx ON audit_events (chain_id, seq);
-- Time ranges, and the admin search paging newest first over (occurred_at, event_id).
CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at, event_id);
-- Sessions: "where was this session used", and the session views.
CREATE INDEX audit_events_session_idx ON audit_events (session, occurred_at) WHERE session IS NOT NULL;
-- Failed logins and codes (the failure views, attack investigations).
CREATE INDEX audit_events_failures_idx ON audit_events (occurred_at)
  WHERE type IN ('twofold.login.failed', 'twofold.2fa.failed');
-- Lockouts and attacks; enrollments (adoption); admin actions and DLQ rows.
CREATE INDEX audit_events_security_idx ON audit_events (occurred_at)
  WHERE type IN ('twofold.lockout.imposed', 'twofold.lockout.lifted', 'twofold.attack.detected');
CREATE INDEX audit_events_enrollment_idx ON audit_events (username, occurred_at)
  WHERE type IN ('twofold.enrollment.activated', 'twofold.enrollment.reset');
CREATE INDEX audit_events_admin_idx ON audit_events (occurred_at)
  WHERE type LIKE 'twofold.admin.%' OR type = 'twofold.dlq';
-- Served by the above: by type (mostly bulk types, found by time), by app (few values),
-- by Kafka coordinates (nothing looks rows up that way; the chain index orders them).
DROP INDEX audit_events_type_idx;
DROP INDEX audit_events_app_idx;
DROP INDEX audit_events_coordinates_idx;

-- Daily partitions with UTC bounds (the chain's day), idempotent. A day whose rows already
-- landed in the DEFAULT partition (events far in the past or future) gets them moved into
-- its new partition instead of failing.
CREATE OR REPLACE FUNCTION ensure_audit_partitions(days_back integer, days_ahead integer) RETURNS integer
LANGUAGE plpgsql SET lock_timeout = '5s' AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  day date;
  created integer := 0;
  part text;
  lo timestamptz;
  hi timestamptz;
  cols text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('twofold.audit_partitions'));
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = 'audit_events'::regclass AND attnum > 0 AND NOT attisdropped;
  FOR day IN SELECT generate_series(today - days_back, today + days_ahead, interval '1 day')::date LOOP
    part := format('audit_events_%s', to_char(day, 'YYYYMMDD'));
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
      lo := day::timestamp AT TIME ZONE 'UTC';
      hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
      IF EXISTS (SELECT 1 FROM audit_events_default WHERE occurred_at >= lo AND occurred_at < hi) THEN
        EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM audit_events_default WHERE occurred_at >= %L AND occurred_at < %L',
                       part, cols, cols, lo, hi);
        EXECUTE format('DELETE FROM audit_events_default WHERE occurred_at >= %L AND occurred_at < %L', lo, hi);
        EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      END IF;
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

-- Retention: drops the daily partitions older than retention_days (whole days before
-- today - retention_days, UTC), the DEFAULT partition's rows of that age, and the chains
-- of those days (a chain covers one day, so no chain is left with a hole). Returns the
-- partitions dropped. lock_timeout: never queue the sink's inserts behind a long wait.
CREATE FUNCTION drop_audit_partitions(retention_days integer) RETURNS SETOF text
LANGUAGE plpgsql SET lock_timeout = '5s' AS $$
DECLARE
  cutoff date;
  part record;
BEGIN
  IF retention_days IS NULL OR retention_days < 1 THEN
    RAISE EXCEPTION 'retention_days must be at least 1, got %', retention_days;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('twofold.audit_partitions'));
  cutoff := (now() AT TIME ZONE 'UTC')::date - retention_days;
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'audit_events'::regclass AND c.relname ~ '^audit_events_[0-9]{8}$'
     ORDER BY c.relname
  LOOP
    IF to_date(right(part.relname, 8), 'YYYYMMDD') < cutoff THEN
      EXECUTE format('DROP TABLE %I', part.relname);
      RETURN NEXT part.relname;
    END IF;
  END LOOP;
  DELETE FROM audit_events_default WHERE occurred_at < cutoff::timestamp AT TIME ZONE 'UTC';
  DELETE FROM audit_chains WHERE day < cutoff;
END $$;

-- Upkeep is the sink's job, not everyone's (functions are executable by PUBLIC by default).
REVOKE EXECUTE ON FUNCTION ensure_audit_partitions(integer, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION drop_audit_partitions(integer) FROM PUBLIC;

-- Views for analysts. Times are timestamptz; date_trunc follows the session's TimeZone.

CREATE VIEW audit_failed_logins_by_ip_hourly AS
SELECT date_trunc('hour', occurred_at) AS hour,
       ip,
       count(*) FILTER (WHERE type = 'twofold.login.failed') AS password_failures,
       count(*) FILTER (WHERE type = 'twofold.2fa.failed') AS code_failures,
       count(*) AS failures,
       count(DISTINCT username) AS users,
       count(DISTINCT app_id) AS apps,
       min(occurred_at) AS first_at,
       max(occurred_at) AS last_at
  FROM audit_events
 WHERE type IN ('twofold.login.failed', 'twofold.2fa.failed') AND ip IS NOT NULL
 GROUP BY 1, 2;
COMMENT ON VIEW audit_failed_logins_by_ip_hourly IS
  'Failed primary logins (password_failures) and failed second-factor codes (code_failures) per client IP and hour; users = distinct usernames tried from that IP.';

CREATE VIEW audit_failed_logins_by_user_hourly AS
SELECT date_trunc('hour', occurred_at) AS hour,
       username,
       count(*) FILTER (WHERE type = 'twofold.login.failed') AS password_failures,
       count(*) FILTER (WHERE type = 'twofold.2fa.failed') AS code_failures,
       count(*) AS failures,
       count(DISTINCT ip) AS ips,
       count(DISTINCT app_id) AS apps,
       min(occurred_at) AS first_at,
       max(occurred_at) AS last_at
  FROM audit_events
 WHERE type IN ('twofold.login.failed', 'twofold.2fa.failed') AND username IS NOT NULL
 GROUP BY 1, 2;
COMMENT ON VIEW audit_failed_logins_by_user_hourly IS
  'Failed primary logins and failed codes per username and hour; ips = distinct client IPs.';

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

-- A user's latest enrollment event says whether they have an authenticator now.
CREATE VIEW audit_enrollment_status AS
SELECT DISTINCT ON (username)
       username,
       type = 'twofold.enrollment.activated' AS enrolled,
       occurred_at AS changed_at
  FROM audit_events
 WHERE type IN ('twofold.enrollment.activated', 'twofold.enrollment.reset') AND username IS NOT NULL
 ORDER BY username, occurred_at DESC, received_at DESC;
COMMENT ON VIEW audit_enrollment_status IS
  'Per user, whether the latest enrollment event kept in the audit trail is an activation (enrolled) or a reset.';

CREATE VIEW audit_2fa_adoption_by_app AS
WITH users AS (
  SELECT app_id,
         username,
         bool_or(type = 'twofold.2fa.verified') AS verified,
         bool_or(type = 'twofold.2fa.decided' AND decision = 'challenge') AS challenged,
         bool_or(type = 'twofold.2fa.decided' AND decision = 'skip') AS skipped
    FROM audit_events
   WHERE type IN ('twofold.login.succeeded', 'twofold.2fa.verified', 'twofold.2fa.decided')
     AND app_id IS NOT NULL AND username IS NOT NULL
   GROUP BY app_id, username
  HAVING bool_or(type = 'twofold.login.succeeded')
)
SELECT u.app_id,
       count(*) AS users,
       count(*) FILTER (WHERE s.enrolled) AS enrolled_users,
       count(*) FILTER (WHERE u.challenged) AS challenged_users,
       count(*) FILTER (WHERE u.verified) AS verified_users,
       count(*) FILTER (WHERE u.skipped) AS skipped_users,
       round(100.0 * count(*) FILTER (WHERE s.enrolled) / count(*), 1) AS adoption_pct
  FROM users u
  LEFT JOIN audit_enrollment_status s USING (username)
 GROUP BY u.app_id;
COMMENT ON VIEW audit_2fa_adoption_by_app IS
  'Per app: users who signed in, how many have an authenticator (enrolled_users, adoption_pct), were asked for a code, verified one there, or were let through without one.';

CREATE VIEW audit_2fa_adoption_by_group AS
WITH latest AS (
  SELECT DISTINCT ON (username) username, event->'data'->'groups' AS groups
    FROM audit_events
   WHERE type = 'twofold.login.succeeded' AND username IS NOT NULL
     AND jsonb_typeof(event->'data'->'groups') = 'array'
   ORDER BY username, occurred_at DESC, received_at DESC
),
members AS (
  SELECT DISTINCT g.group_name, l.username
    FROM latest l CROSS JOIN LATERAL jsonb_array_elements_text(l.groups) AS g(group_name)
)
SELECT m.group_name,
       count(*) AS users,
       count(*) FILTER (WHERE s.enrolled) AS enrolled_users,
       round(100.0 * count(*) FILTER (WHERE s.enrolled) / count(*), 1) AS adoption_pct
  FROM members m
  LEFT JOIN audit_enrollment_status s USING (username)
 GROUP BY m.group_name;
COMMENT ON VIEW audit_2fa_adoption_by_group IS
  'Per group (as the latest login that listed groups reported them): members, how many have an authenticator, adoption_pct.';

CREATE VIEW audit_2fa_decisions_daily AS
SELECT date_trunc('day', occurred_at) AS day,
       app_id,
       decision,
       reason,
       count(*) AS decisions,
       count(DISTINCT username) AS users,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY date_trunc('day', occurred_at), app_id), 1) AS share_pct
  FROM audit_events
 WHERE type = 'twofold.2fa.decided'
 GROUP BY 1, 2, 3, 4;
COMMENT ON VIEW audit_2fa_decisions_daily IS
  'Second-factor decisions per day, app, decision (challenge, skip, enroll, deny) and reason; share_pct of that app''s decisions that day. Skip reasons: WHERE decision = ''skip''.';

CREATE VIEW audit_session_usage AS
SELECT session,
       max(username) AS username,
       count(*) FILTER (WHERE type = 'twofold.2fa.verified') AS verifications,
       min(occurred_at) FILTER (WHERE type = 'twofold.2fa.verified') AS first_verified_at,
       (array_agg(app_id ORDER BY occurred_at) FILTER (WHERE type = 'twofold.2fa.verified'))[1] AS verified_in_app,
       count(DISTINCT app_id) FILTER (WHERE type IN ('twofold.login.succeeded', 'twofold.2fa.decided')) AS apps,
       array_agg(DISTINCT app_id ORDER BY app_id)
         FILTER (WHERE type IN ('twofold.login.succeeded', 'twofold.2fa.decided') AND app_id IS NOT NULL) AS app_ids,
       count(*) FILTER (WHERE type = 'twofold.2fa.decided' AND reason = 'session_verified') AS prompts_skipped,
       min(occurred_at) AS first_seen_at,
       max(occurred_at) AS last_seen_at
  FROM audit_events
 WHERE session IS NOT NULL
   AND type IN ('twofold.login.succeeded', 'twofold.2fa.decided', 'twofold.2fa.verified')
 GROUP BY session;
COMMENT ON VIEW audit_session_usage IS
  'Per SSO session (hash): codes verified, in which app first, the apps it signed in to, and prompts skipped because it was already verified.';

CREATE VIEW audit_sessions_verified_once_multi_app AS
SELECT * FROM audit_session_usage WHERE verifications = 1 AND apps >= 2;
COMMENT ON VIEW audit_sessions_verified_once_multi_app IS
  'Sessions whose second factor was proven once and then used in two or more apps (verify once, trusted everywhere).';

-- The analysts' read-only role, when the cluster has one (the local stack and the Helm
-- chart create it; elsewhere this is a no-op). Reading goes through the parent table and
-- the views; nothing else in the schema (secrets, app keys) is granted.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'twofold_analyst') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO twofold_analyst', current_schema());
    GRANT SELECT ON audit_events, audit_chains, audit_chain_settings,
      audit_failed_logins_by_ip_hourly, audit_failed_logins_by_user_hourly, audit_lockouts_and_attacks,
      audit_enrollment_status, audit_2fa_adoption_by_app, audit_2fa_adoption_by_group,
      audit_2fa_decisions_daily, audit_session_usage, audit_sessions_verified_once_multi_app
      TO twofold_analyst;
  END IF;
END $$;

-- Down Migration
DROP VIEW IF EXISTS audit_sessions_verified_once_multi_app;
DROP VIEW IF EXISTS audit_session_usage;
DROP VIEW IF EXISTS audit_2fa_decisions_daily;
DROP VIEW IF EXISTS audit_2fa_adoption_by_group;
DROP VIEW IF EXISTS audit_2fa_adoption_by_app;
DROP VIEW IF EXISTS audit_enrollment_status;
DROP VIEW IF EXISTS audit_lockouts_and_attacks;
DROP VIEW IF EXISTS audit_failed_logins_by_user_hourly;
DROP VIEW IF EXISTS audit_failed_logins_by_ip_hourly;
DROP FUNCTION IF EXISTS drop_audit_partitions(integer);
CREATE INDEX IF NOT EXISTS audit_events_type_idx ON audit_events (type, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_app_idx ON audit_events (app_id, occurred_at);
CREATE INDEX IF NOT EXISTS audit_events_coordinates_idx ON audit_events (kafka_topic, kafka_partition, kafka_offset);
DROP INDEX IF EXISTS audit_events_admin_idx;
DROP INDEX IF EXISTS audit_events_enrollment_idx;
DROP INDEX IF EXISTS audit_events_security_idx;
DROP INDEX IF EXISTS audit_events_failures_idx;
DROP INDEX IF EXISTS audit_events_session_idx;
DROP INDEX IF EXISTS audit_events_occurred_idx;
DROP INDEX IF EXISTS audit_events_chain_idx;
ALTER TABLE audit_events DROP COLUMN IF EXISTS row_hash, DROP COLUMN IF EXISTS prev_hash,
  DROP COLUMN IF EXISTS seq, DROP COLUMN IF EXISTS chain_id;
DROP TABLE IF EXISTS audit_chains;
DROP TABLE IF EXISTS audit_chain_settings;
