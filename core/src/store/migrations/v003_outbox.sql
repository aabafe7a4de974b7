-- 3: captured PODs and photos, and their outbox state.
-- One row per capture: the id is also the idempotency key UPN sees, so a retry after a lost
-- response can never create a second POD or image. Originals and upload renditions are files in
-- the data folder's blobs/ directory, written and fsynced before the row is committed.
CREATE TABLE captures (
    id               TEXT PRIMARY KEY NOT NULL,
    barcode          TEXT NOT NULL REFERENCES consignments(barcode),
    kind             TEXT NOT NULL CHECK (kind IN ('pod', 'goods', 'location', 'leave_safe')),
    seq              INTEGER NOT NULL UNIQUE,          -- capture order on this device
    captured_at      TEXT NOT NULL,                    -- device clock at capture
    clock_offset_ms  INTEGER,                          -- device minus UPN at capture, if known
    signed_by        TEXT,                             -- PODs only
    lat              REAL,
    lon              REAL,
    accuracy_m       REAL,
    fix_at           TEXT,
    gps_stale        INTEGER NOT NULL DEFAULT 0,
    original_file    TEXT NOT NULL,
    original_sha256  TEXT NOT NULL,
    original_bytes   INTEGER NOT NULL,
    upload_file      TEXT,                             -- rendition, made off the capture path
    upload_sha256    TEXT,
    upload_bytes     INTEGER,
    state            TEXT NOT NULL CHECK (state IN
                        ('waiting', 'queued', 'sending', 'sent', 'needs_attention', 'replaced', 'discarded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT,
    sent_at          TEXT,                             -- when UPN acknowledged it
    upn_reference    TEXT,
    replaces         TEXT REFERENCES captures(id)      -- a re-signature records what it replaced
) STRICT;

-- At most one live POD per consignment.
CREATE UNIQUE INDEX captures_one_live_pod ON captures(barcode)
    WHERE kind = 'pod' AND state NOT IN ('replaced', 'discarded');
CREATE INDEX captures_by_state ON captures(state, next_attempt_at);
CREATE INDEX captures_by_consignment ON captures(barcode, seq);
