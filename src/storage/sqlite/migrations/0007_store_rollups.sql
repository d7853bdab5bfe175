-- Hour and day rollups of each store (domain::buckets): a row is a piece, the minutes of one local hour
-- (level 1) or day (level 2) that fall in one occupancy period, keyed by its first possible minute.
-- Filled from store_minutes when this migration runs, then kept by every recomputation of a period.
CREATE TABLE store_rollups (
    store_id INTEGER NOT NULL,
    level INTEGER NOT NULL,
    start INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    row_count INTEGER NOT NULL,
    last_minute INTEGER NOT NULL,
    last_occupancy INTEGER NOT NULL,
    peak_occupancy INTEGER NOT NULL,
    peak_minute INTEGER NOT NULL,
    PRIMARY KEY (store_id, level, start)
) WITHOUT ROWID;
