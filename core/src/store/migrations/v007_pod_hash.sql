-- 7: the tamper-evident POD hash (domain::pod_hash).
-- pod_sha256: the hash sent with the POD, fixed at its first attempt together with
--   pod_image_count, so every request under one idempotency key carries the same bytes.
--   NULL for a POD whose first attempt was made before this version: it keeps being sent
--   without a hash, byte-identical to that attempt.
-- pod_manifest: the canonical text the hash was taken over; `verify` recomputes it from the
--   stored rows and files.
ALTER TABLE captures ADD COLUMN pod_sha256 TEXT;
ALTER TABLE captures ADD COLUMN pod_manifest TEXT;
