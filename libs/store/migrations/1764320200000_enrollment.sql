-- Up Migration

-- One active TOTP secret per user, shared by every app. The secret is encrypted
-- (AES-256-GCM, key ring, username as associated data): see libs/otp.
CREATE TABLE enrollments (
  username text PRIMARY KEY,
  secret_ciphertext text NOT NULL,
  algorithm text NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits smallint NOT NULL CHECK (digits IN (6, 8)),
  period smallint NOT NULL DEFAULT 30 CHECK (period BETWEEN 15 AND 120),
  origin text NOT NULL CHECK (origin IN ('generated', 'imported')),
  activated_at timestamptz NOT NULL DEFAULT now()
);

-- Started but not yet confirmed with a code; expire after a while.
CREATE TABLE pending_enrollments (
  enrollment_id uuid PRIMARY KEY,
  username text NOT NULL,
  secret_ciphertext text NOT NULL,
  algorithm text NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits smallint NOT NULL CHECK (digits IN (6, 8)),
  period smallint NOT NULL DEFAULT 30,
  app_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX pending_enrollments_username_idx ON pending_enrollments (username);

-- Backup codes, scrypt-hashed; each usable once.
CREATE TABLE backup_codes (
  username text NOT NULL REFERENCES enrollments (username) ON DELETE CASCADE,
  code_hash text NOT NULL,
  used_at timestamptz,
  PRIMARY KEY (username, code_hash)
);

-- A version every replica polls to pick up policy changes within a second.
ALTER TABLE policy_settings ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION bump_policy_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE policy_settings SET version = version + 1 WHERE id;
  RETURN NULL;
END $$;

CREATE TRIGGER policy_rules_changed AFTER INSERT OR UPDATE OR DELETE ON policy_rules
  FOR EACH STATEMENT EXECUTE FUNCTION bump_policy_version();

-- Down Migration
DROP TRIGGER IF EXISTS policy_rules_changed ON policy_rules;
DROP FUNCTION IF EXISTS bump_policy_version();
ALTER TABLE policy_settings DROP COLUMN IF EXISTS version;
DROP TABLE IF EXISTS backup_codes;
DROP TABLE IF EXISTS pending_enrollments;
DROP TABLE IF EXISTS enrollments;
