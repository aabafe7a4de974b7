CREATE TABLE consignments (
    barcode          TEXT PRIMARY KEY NOT NULL,
    shipper_name     TEXT NOT NULL,
    shipper_phone    TEXT,
    consignee_name   TEXT NOT NULL,
    consignee_phone  TEXT,
    address_lines    TEXT NOT NULL,     -- JSON array of strings
    town             TEXT NOT NULL,
    postcode         TEXT NOT NULL,
    country          TEXT NOT NULL,
    lat              REAL NOT NULL,
    lon              REAL NOT NULL,
    weight_kg        REAL NOT NULL,
    service          TEXT NOT NULL,     -- UPN service code, verbatim
    window_from      TEXT,              -- HH:MM:SS local time
    window_to        TEXT,
    delivery_date    TEXT NOT NULL,     -- YYYY-MM-DD
    instructions     TEXT,
    stage            TEXT,              -- latest consignment-level stage code, verbatim
    stage_at         TEXT,
    cancelled_at     TEXT,
    cancel_reason    TEXT,
    upn_updated_at   TEXT NOT NULL,
    imported_at      TEXT NOT NULL
) STRICT;

CREATE TABLE pallets (
    barcode          TEXT PRIMARY KEY NOT NULL,
    consignment      TEXT NOT NULL REFERENCES consignments(barcode) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    size             TEXT NOT NULL,
    weight_kg        REAL NOT NULL,
    stage            TEXT,
    stage_at         TEXT
) STRICT;
CREATE INDEX pallets_by_consignment ON pallets(consignment, position);

CREATE TABLE sync_state (
    key              TEXT PRIMARY KEY NOT NULL,
    value            TEXT NOT NULL
) STRICT;
