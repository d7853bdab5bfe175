-- A device moved to another store keeps an inactive row in each earlier store (holding the bins it
-- counted there) and one active row: its device_id is unique among active devices only. SQLite cannot
-- drop a column's UNIQUE, so the table is rebuilt (nothing references it).
CREATE TABLE devices_moved (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    token_hash TEXT NOT NULL UNIQUE,
    last_bin_minute INTEGER,
    last_seen_at INTEGER,
    removed_at INTEGER
);
INSERT INTO devices_moved SELECT id, device_id, store_id, token_hash, last_bin_minute, last_seen_at, removed_at
    FROM devices;
DROP TABLE devices;
ALTER TABLE devices_moved RENAME TO devices;
CREATE INDEX devices_by_store ON devices (store_id);
CREATE INDEX devices_by_device_id ON devices (device_id);
CREATE UNIQUE INDEX devices_active_by_device_id ON devices (device_id) WHERE removed_at IS NULL;
