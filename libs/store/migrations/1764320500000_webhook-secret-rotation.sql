-- Up Migration

-- Rotating an app's webhook secret keeps the one it replaces for a grace period: until
-- then, session webhooks carry a signature by each (Standard Webhooks "v1,<a> v1,<b>"), so
-- receivers still holding the old secret go on verifying while they switch.
ALTER TABLE apps ADD COLUMN previous_webhook_secret text;
ALTER TABLE apps ADD COLUMN previous_webhook_secret_until timestamptz;

-- Down Migration
ALTER TABLE apps DROP COLUMN IF EXISTS previous_webhook_secret_until;
ALTER TABLE apps DROP COLUMN IF EXISTS previous_webhook_secret;
