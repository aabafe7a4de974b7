-- 2: the tracking inbox and the applied tracking events.
--
-- UPN hands each batch of tracking events out once. Every tracking-feed response is committed
-- here, raw, in its own transaction the moment it has been read, and only then parsed and
-- applied. A batch that cannot be parsed is kept (never deleted), marked failed with the reason.
CREATE TABLE tracking_inbox (
    id               INTEGER PRIMARY KEY,               -- arrival order on this device
    received_at      TEXT NOT NULL,                     -- device clock when the body was read
    server_time      TEXT,                              -- X-UPN-Server-Time of the response
    batch_id         TEXT,                              -- UPN's batch id, known once parsed
    sha256           TEXT NOT NULL,                     -- hex sha256 of body
    bytes            INTEGER NOT NULL,
    body             BLOB NOT NULL,                     -- the response body, exactly as read
    state            TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'processed', 'failed')),
    error            TEXT,                              -- why it failed (never the body itself)
    processed_at     TEXT,                              -- device clock when applied or failed
    event_count      INTEGER,                           -- events in the batch
    applied_count    INTEGER,                           -- of which new on this device
    remaining        INTEGER                            -- UPN's `remaining` after this batch
) STRICT;
CREATE INDEX tracking_inbox_by_state ON tracking_inbox(state, id);

-- One row per event, keyed by its id: applying a batch twice inserts nothing twice.
-- No foreign key to consignments: events may arrive before their consignment is imported, and
-- are applied when it arrives.
CREATE TABLE tracking_events (
    id               TEXT PRIMARY KEY NOT NULL,         -- UPN's event id (device: 'device:...')
    barcode          TEXT NOT NULL,                     -- consignment barcode
    pallet           TEXT,                              -- pallet barcode, for P events
    capture_type     TEXT NOT NULL,                     -- 'C', 'P', or another code verbatim
    stage            TEXT NOT NULL,                     -- stage code, verbatim
    at               TEXT NOT NULL,                     -- when it happened (UPN clock)
    location         TEXT,                              -- description
    lat              REAL,
    lon              REAL,
    source           TEXT NOT NULL CHECK (source IN ('upn', 'device')),
    inbox_id         INTEGER REFERENCES tracking_inbox(id)
) STRICT;
CREATE INDEX tracking_events_by_consignment ON tracking_events(barcode, at);
