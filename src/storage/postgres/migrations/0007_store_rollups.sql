-- Hour and day rollups of each store (domain::buckets): a row is a piece, the minutes of one local hour
-- (level 1) or day (level 2) that fall in one occupancy period, keyed by its first possible minute.
-- Filled from store_minutes when this migration runs, then kept by every recomputation of a period.
-- Distributed by store_id, like store_minutes.
CREATE TABLE store_rollups (
    store_id bigint NOT NULL,
    level bigint NOT NULL,
    start bigint NOT NULL,
    entries bigint NOT NULL,
    exits bigint NOT NULL,
    row_count bigint NOT NULL,
    last_minute bigint NOT NULL,
    last_occupancy bigint NOT NULL,
    peak_occupancy bigint NOT NULL,
    peak_minute bigint NOT NULL,
    PRIMARY KEY (store_id, level, start)
);
