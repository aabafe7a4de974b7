-- 8: data that leaves the device, and typed outbox reasons.
-- last_error_code: the stable code of last_error (domain::outbox::OutboxReason::code), for the
--   app to switch on; NULL for rows failed before this version (the reason is then read from
--   the text) and for rows without an error.
-- purged_at: when retention removed the capture's files (original and upload rendition), some
--   time after UPN acknowledged it; the row stays for receipts and the consignment's history
--   until the consignment itself leaves the device.
ALTER TABLE captures ADD COLUMN last_error_code TEXT;
ALTER TABLE captures ADD COLUMN purged_at INTEGER;
