-- A push sums the intervals of each minute it touched: with the counts in the index, that range is read
-- from the index alone (an index-only scan), without visiting each interval's row.
DROP INDEX sensor_intervals_by_minute;
CREATE INDEX sensor_intervals_by_minute ON sensor_intervals (device_id, minute) INCLUDE (entries, exits);
