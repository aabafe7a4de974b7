-- 5: every stored instant becomes INTEGER milliseconds since the Unix epoch (UTC).
--
-- Until v4 instants were RFC 3339 text ('2026-11-26T10:00:00.000Z'): text order was time order
-- only while every value had the same width, and a year past 9999 from a hostile server
-- ('+10000-...') sorted before every real time ("due now") and could not be read back.
-- Integers compare numerically whatever they hold, and the readers refuse any instant outside
-- the years 2000..=2100 (store::STORED_YEARS).
--
-- Each column is swapped in place (rename the text column, add the integer one, convert, drop
-- the text one) rather than rebuilding its table: the rows, the other columns (including any a
-- neighbouring migration added) and the foreign keys are untouched, and no DROP TABLE can
-- cascade. ADD COLUMN needs a default for NOT NULL; 0 is never written by the code and reads
-- back as unreadable, like any other out-of-range instant.
--
-- The conversion is exact to the millisecond (unixepoch whole seconds + the '%f' milliseconds).
-- A value outside 2000..=2100 or not a time at all converts to NULL. For a nullable column
-- that is what is stored ("unknown"); a cancellation and UPN's update time fall back to the
-- device's import time, so a cancelled consignment stays cancelled; a tracking event whose
-- time was unreadable is dropped (its batch stays in the inbox, and the wire parser now
-- refuses such an event on arrival); sync-state times that cannot be read are forgotten.

-- Indexes on a column keep it from being dropped; they are recreated below, same definition.
DROP INDEX captures_by_state;
DROP INDEX tracking_events_by_consignment;


-- consignments
ALTER TABLE consignments RENAME COLUMN stage_at TO stage_at_text;
ALTER TABLE consignments RENAME COLUMN cancelled_at TO cancelled_at_text;
ALTER TABLE consignments RENAME COLUMN upn_updated_at TO upn_updated_at_text;
ALTER TABLE consignments RENAME COLUMN imported_at TO imported_at_text;
ALTER TABLE consignments ADD COLUMN stage_at INTEGER;
ALTER TABLE consignments ADD COLUMN cancelled_at INTEGER;
ALTER TABLE consignments ADD COLUMN upn_updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE consignments ADD COLUMN imported_at INTEGER NOT NULL DEFAULT 0;
UPDATE consignments SET
    stage_at = (CASE WHEN stage_at_text >= '2000' AND stage_at_text < '2101' THEN unixepoch(stage_at_text) * 1000 + CAST(substr(strftime('%f', stage_at_text), 4, 3) AS INTEGER) END),
    cancelled_at = CASE WHEN cancelled_at_text IS NULL THEN NULL ELSE COALESCE((CASE WHEN cancelled_at_text >= '2000' AND cancelled_at_text < '2101' THEN unixepoch(cancelled_at_text) * 1000 + CAST(substr(strftime('%f', cancelled_at_text), 4, 3) AS INTEGER) END),
        (CASE WHEN imported_at_text >= '2000' AND imported_at_text < '2101' THEN unixepoch(imported_at_text) * 1000 + CAST(substr(strftime('%f', imported_at_text), 4, 3) AS INTEGER) END)) END,
    upn_updated_at = COALESCE(COALESCE((CASE WHEN upn_updated_at_text >= '2000' AND upn_updated_at_text < '2101' THEN unixepoch(upn_updated_at_text) * 1000 + CAST(substr(strftime('%f', upn_updated_at_text), 4, 3) AS INTEGER) END),
        (CASE WHEN imported_at_text >= '2000' AND imported_at_text < '2101' THEN unixepoch(imported_at_text) * 1000 + CAST(substr(strftime('%f', imported_at_text), 4, 3) AS INTEGER) END)), 0),
    imported_at = COALESCE((CASE WHEN imported_at_text >= '2000' AND imported_at_text < '2101' THEN unixepoch(imported_at_text) * 1000 + CAST(substr(strftime('%f', imported_at_text), 4, 3) AS INTEGER) END), 0);
ALTER TABLE consignments DROP COLUMN stage_at_text;
ALTER TABLE consignments DROP COLUMN cancelled_at_text;
ALTER TABLE consignments DROP COLUMN upn_updated_at_text;
ALTER TABLE consignments DROP COLUMN imported_at_text;

-- pallets
ALTER TABLE pallets RENAME COLUMN stage_at TO stage_at_text;
ALTER TABLE pallets ADD COLUMN stage_at INTEGER;
UPDATE pallets SET
    stage_at = (CASE WHEN stage_at_text >= '2000' AND stage_at_text < '2101' THEN unixepoch(stage_at_text) * 1000 + CAST(substr(strftime('%f', stage_at_text), 4, 3) AS INTEGER) END);
ALTER TABLE pallets DROP COLUMN stage_at_text;

-- tracking_inbox
ALTER TABLE tracking_inbox RENAME COLUMN received_at TO received_at_text;
ALTER TABLE tracking_inbox RENAME COLUMN server_time TO server_time_text;
ALTER TABLE tracking_inbox RENAME COLUMN processed_at TO processed_at_text;
ALTER TABLE tracking_inbox ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracking_inbox ADD COLUMN server_time INTEGER;
ALTER TABLE tracking_inbox ADD COLUMN processed_at INTEGER;
UPDATE tracking_inbox SET
    received_at = COALESCE((CASE WHEN received_at_text >= '2000' AND received_at_text < '2101' THEN unixepoch(received_at_text) * 1000 + CAST(substr(strftime('%f', received_at_text), 4, 3) AS INTEGER) END), 0),
    server_time = (CASE WHEN server_time_text >= '2000' AND server_time_text < '2101' THEN unixepoch(server_time_text) * 1000 + CAST(substr(strftime('%f', server_time_text), 4, 3) AS INTEGER) END),
    processed_at = (CASE WHEN processed_at_text >= '2000' AND processed_at_text < '2101' THEN unixepoch(processed_at_text) * 1000 + CAST(substr(strftime('%f', processed_at_text), 4, 3) AS INTEGER) END);
ALTER TABLE tracking_inbox DROP COLUMN received_at_text;
ALTER TABLE tracking_inbox DROP COLUMN server_time_text;
ALTER TABLE tracking_inbox DROP COLUMN processed_at_text;

-- tracking_events
ALTER TABLE tracking_events RENAME COLUMN at TO at_text;
ALTER TABLE tracking_events ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
UPDATE tracking_events SET
    at = COALESCE((CASE WHEN at_text >= '2000' AND at_text < '2101' THEN unixepoch(at_text) * 1000 + CAST(substr(strftime('%f', at_text), 4, 3) AS INTEGER) END), 0);
DELETE FROM tracking_events WHERE at = 0;
ALTER TABLE tracking_events DROP COLUMN at_text;

-- captures
ALTER TABLE captures RENAME COLUMN captured_at TO captured_at_text;
ALTER TABLE captures RENAME COLUMN fix_at TO fix_at_text;
ALTER TABLE captures RENAME COLUMN next_attempt_at TO next_attempt_at_text;
ALTER TABLE captures RENAME COLUMN sent_at TO sent_at_text;
ALTER TABLE captures ADD COLUMN captured_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE captures ADD COLUMN fix_at INTEGER;
ALTER TABLE captures ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE captures ADD COLUMN sent_at INTEGER;
UPDATE captures SET
    captured_at = COALESCE((CASE WHEN captured_at_text >= '2000' AND captured_at_text < '2101' THEN unixepoch(captured_at_text) * 1000 + CAST(substr(strftime('%f', captured_at_text), 4, 3) AS INTEGER) END), 0),
    fix_at = (CASE WHEN fix_at_text >= '2000' AND fix_at_text < '2101' THEN unixepoch(fix_at_text) * 1000 + CAST(substr(strftime('%f', fix_at_text), 4, 3) AS INTEGER) END),
    next_attempt_at = (CASE WHEN next_attempt_at_text >= '2000' AND next_attempt_at_text < '2101' THEN unixepoch(next_attempt_at_text) * 1000 + CAST(substr(strftime('%f', next_attempt_at_text), 4, 3) AS INTEGER) END),
    sent_at = (CASE WHEN sent_at_text >= '2000' AND sent_at_text < '2101' THEN unixepoch(sent_at_text) * 1000 + CAST(substr(strftime('%f', sent_at_text), 4, 3) AS INTEGER) END);
ALTER TABLE captures DROP COLUMN captured_at_text;
ALTER TABLE captures DROP COLUMN fix_at_text;
ALTER TABLE captures DROP COLUMN next_attempt_at_text;
ALTER TABLE captures DROP COLUMN sent_at_text;

-- sync_state keeps its values as text: times become the decimal text of the milliseconds.
DELETE FROM sync_state
 WHERE key IN ('import.last_success', 'tracking.last_success', 'tracking.first_attempt')
   AND (CASE WHEN value >= '2000' AND value < '2101' THEN unixepoch(value) * 1000 + CAST(substr(strftime('%f', value), 4, 3) AS INTEGER) END) IS NULL;
UPDATE sync_state SET value = CAST((CASE WHEN value >= '2000' AND value < '2101' THEN unixepoch(value) * 1000 + CAST(substr(strftime('%f', value), 4, 3) AS INTEGER) END) AS TEXT)
 WHERE key IN ('import.last_success', 'tracking.last_success', 'tracking.first_attempt');

CREATE INDEX captures_by_state ON captures(state, next_attempt_at);
CREATE INDEX tracking_events_by_consignment ON tracking_events(barcode, at);
