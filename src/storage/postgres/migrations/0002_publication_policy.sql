-- The publication policy, shared by every process writing to the database: the schedule's interval
-- in seconds, 0 = on ingest. 900 (15 minutes) is the default.
INSERT INTO meta VALUES ('publish_interval_seconds', 900);
