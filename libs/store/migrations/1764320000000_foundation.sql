-- Up Migration

-- Apps that may publish events and call the API. Keys are random 256-bit tokens, so a
-- SHA-256 of the key is a safe lookup hash (no slow KDF needed for high-entropy secrets).
CREATE TABLE apps (
  app_id text PRIMARY KEY CHECK (app_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  webhook_url text,
  origins text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- The global policy (one row) and per user / group / app rules.
CREATE TABLE policy_settings (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  settings jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL DEFAULT 'system'
);
INSERT INTO policy_settings (settings) VALUES ('{}');

CREATE TABLE policy_rules (
  kind text NOT NULL CHECK (kind IN ('user', 'group', 'app')),
  subject text NOT NULL,
  mode text NOT NULL CHECK (mode IN ('require', 'exempt')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL,
  PRIMARY KEY (kind, subject)
);

-- The audit trail: every event of every topic, once. Partitioned by the event's own time
-- (deterministic on redelivery), so the idempotency key (event_id, occurred_at) is a legal
-- unique key on a partitioned table.
CREATE TABLE audit_events (
  event_id text NOT NULL,
  occurred_at timestamptz NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL,
  source text NOT NULL,
  app_id text,
  username text,
  session text,
  ip inet,
  outcome text,
  decision text,
  reason text,
  kafka_topic text NOT NULL,
  kafka_partition integer NOT NULL,
  kafka_offset bigint NOT NULL,
  event jsonb NOT NULL,
  PRIMARY KEY (event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Rows whose time falls outside every daily partition (clock skew, absurd timestamps).
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

CREATE INDEX audit_events_username_idx ON audit_events (username, occurred_at);
CREATE INDEX audit_events_app_idx ON audit_events (app_id, occurred_at);
CREATE INDEX audit_events_type_idx ON audit_events (type, occurred_at);
CREATE INDEX audit_events_ip_idx ON audit_events (ip, occurred_at) WHERE ip IS NOT NULL;
CREATE INDEX audit_events_coordinates_idx ON audit_events (kafka_topic, kafka_partition, kafka_offset);

-- Creates the daily partitions covering [today - days_back, today + days_ahead]; idempotent.
CREATE FUNCTION ensure_audit_partitions(days_back integer, days_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  day date;
  created integer := 0;
  part text;
BEGIN
  FOR day IN SELECT generate_series(current_date - days_back, current_date + days_ahead, interval '1 day')::date LOOP
    part := format('audit_events_%s', to_char(day, 'YYYYMMDD'));
    IF to_regclass(quote_ident(current_schema()) || '.' || part) IS NULL THEN
      EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', part, day, day + 1);
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

SELECT ensure_audit_partitions(7, 14);

-- Down Migration
DROP FUNCTION IF EXISTS ensure_audit_partitions(integer, integer);
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS policy_rules;
DROP TABLE IF EXISTS policy_settings;
DROP TABLE IF EXISTS apps;
