-- 9: tracking response bodies in a table of their own.
-- SQLite rewrites a row whole on any UPDATE, so with the body in tracking_inbox, marking a
-- batch processed wrote its body (about 1 MB for 5,000 events) to the write-ahead log again,
-- and the checkpoint copied it back once more: two extra copies of every body. The inbox row
-- now holds only what changes; the body is written once, when it is received.
-- A body emptied by retention stays as x'' (its row, sha256 and size stay in the inbox).
CREATE TABLE tracking_bodies (
    inbox_id         INTEGER PRIMARY KEY REFERENCES tracking_inbox(id),
    body             BLOB NOT NULL                      -- the response body, exactly as read
) STRICT;
INSERT INTO tracking_bodies (inbox_id, body) SELECT id, body FROM tracking_inbox;
ALTER TABLE tracking_inbox DROP COLUMN body;
