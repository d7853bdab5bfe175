CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta VALUES ('catalog_version', 0), ('publication_generation', 0), ('last_published_at', -1), ('last_scheduled_slot', -1),
    ('published_bins', 0);
CREATE TABLE stores (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    occupancy_reset_minutes INTEGER NOT NULL
);
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    token_hash TEXT NOT NULL UNIQUE,
    last_bin_minute INTEGER,
    last_seen_at INTEGER,
    removed_at INTEGER
);
CREATE INDEX devices_by_store ON devices (store_id);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    all_stores INTEGER NOT NULL,
    can_ingest INTEGER NOT NULL
);
CREATE TABLE user_stores (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    PRIMARY KEY (user_id, store_id)
) WITHOUT ROWID;
-- Ingested, not yet published.
CREATE TABLE pending_bins (
    device_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    PRIMARY KEY (device_id, minute)
) WITHOUT ROWID;
-- Published, per device; minute = Unix seconds of the UTC minute start.
CREATE TABLE bins (
    device_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    PRIMARY KEY (device_id, minute)
) WITHOUT ROWID;
-- Published, per store: only minutes with entries + exits > 0.
CREATE TABLE store_minutes (
    store_id INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    occupancy INTEGER NOT NULL,
    PRIMARY KEY (store_id, minute)
) WITHOUT ROWID;
-- Occupancy periods (local days) holding published rows, with their row counts.
CREATE TABLE store_periods (
    store_id INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    PRIMARY KEY (store_id, period_start)
) WITHOUT ROWID;
CREATE INDEX store_periods_by_start ON store_periods (period_start);
-- Manual occupancy counts; unpublished ones mark their period for recomputation.
CREATE TABLE occupancy_corrections (
    store_id INTEGER NOT NULL REFERENCES stores (id),
    minute INTEGER NOT NULL,
    value INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    published INTEGER NOT NULL,
    PRIMARY KEY (store_id, minute)
) WITHOUT ROWID;
