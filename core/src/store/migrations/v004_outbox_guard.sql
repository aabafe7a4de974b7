-- 4: the outbox as a guarded state machine.
-- retry_wait_ms: the length of the wait that ends at next_attempt_at, so a device clock set
--   back since it was chosen is recognised (the wait then ends at once instead of stalling).
-- pod_image_count: the POD body's image_count, frozen at its first attempt, so every request
--   under one idempotency key carries the same bytes.
-- fix_ahead_ms: how far the GPS fix time was after the capture time (device clock slow, GNSS
--   right); 0 when the fix came first.
ALTER TABLE captures ADD COLUMN retry_wait_ms INTEGER;
ALTER TABLE captures ADD COLUMN pod_image_count INTEGER;
ALTER TABLE captures ADD COLUMN fix_ahead_ms INTEGER NOT NULL DEFAULT 0;
