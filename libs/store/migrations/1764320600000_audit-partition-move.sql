-- Up Migration

-- ensure_audit_partitions, safe beside the sink and whatever the session's TimeZone.
-- Moving a day's rows out of DEFAULT was a copy and then a delete, two statements with a
-- snapshot each (READ COMMITTED): a row the sink committed in between was deleted without
-- being copied. The move is now one statement, so one snapshot: a row committed meanwhile
-- stays in DEFAULT, and ATTACH (which checks DEFAULT) then fails the run rather than lose it.
-- Bounds are UTC literals and days are counted as dates: nothing reads the TimeZone.
CREATE OR REPLACE FUNCTION ensure_audit_partitions(days_back integer, days_ahead integer) RETURNS integer
LANGUAGE plpgsql SET lock_timeout = '5s' AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  day date;
  created integer := 0;
  part text;
  lo text;
  hi text;
  cols text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('twofold.audit_partitions'));
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = 'audit_events'::regclass AND attnum > 0 AND NOT attisdropped;
  FOR i IN -days_back..days_ahead LOOP
    day := today + i;
    part := format('audit_events_%s', to_char(day::timestamp, 'YYYYMMDD'));
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
      lo := to_char(day::timestamp, 'YYYY-MM-DD') || ' 00:00:00+00';
      hi := to_char((day + 1)::timestamp, 'YYYY-MM-DD') || ' 00:00:00+00';
      IF EXISTS (SELECT 1 FROM audit_events_default
                  WHERE occurred_at >= lo::timestamptz AND occurred_at < hi::timestamptz) THEN
        EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        -- Columns by name: RETURNING * follows DEFAULT's column order, not necessarily the parent's.
        EXECUTE format('WITH moved AS (DELETE FROM audit_events_default WHERE occurred_at >= %L AND occurred_at < %L RETURNING *)
                        INSERT INTO %I (%s) SELECT %s FROM moved',
                       lo, hi, part, cols, cols);
        EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
      END IF;
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

-- Down Migration
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
