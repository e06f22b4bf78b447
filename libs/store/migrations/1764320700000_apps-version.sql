-- Up Migration

-- A version every api replica polls (like the policy's) to drop the app keys it keeps as
-- soon as an app is registered, its key rotated, changed, disabled or removed: a rotated
-- (leaked) key is refused by every replica within a second, not after the key cache's TTL.
CREATE TABLE apps_version (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint NOT NULL DEFAULT 1
);
INSERT INTO apps_version DEFAULT VALUES;

CREATE FUNCTION bump_apps_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE apps_version SET version = version + 1 WHERE id;
  RETURN NULL;
END $$;

CREATE TRIGGER apps_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON apps
  FOR EACH STATEMENT EXECUTE FUNCTION bump_apps_version();

-- Down Migration
DROP TRIGGER IF EXISTS apps_changed ON apps;
DROP FUNCTION IF EXISTS bump_apps_version();
DROP TABLE IF EXISTS apps_version;
