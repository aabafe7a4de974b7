-- Tracking guard (issue 9): events are parsed one by one, and a batch or an event the parser
-- could not use is kept with the parser version that judged it, so a newer parser retries it.

-- The parser version that marked a batch failed (NULL: before versions were kept, so any
-- current parser looks again).
ALTER TABLE tracking_inbox ADD COLUMN parser_version INTEGER;
-- Events of a processed batch that were kept aside as malformed.
ALTER TABLE tracking_inbox ADD COLUMN malformed_count INTEGER;

-- One row per malformed event, by its position in its batch's `events` array. The event itself
-- stays in the inbox body; the reason names what was wrong, never the value.
CREATE TABLE tracking_malformed (
    inbox_id         INTEGER NOT NULL REFERENCES tracking_inbox(id),
    position         INTEGER NOT NULL,                  -- index in the batch's events
    reason           TEXT NOT NULL,
    parser_version   INTEGER NOT NULL,
    PRIMARY KEY (inbox_id, position)
) STRICT;
