-- A device moved to another store keeps an inactive row in each earlier store (holding the bins it
-- counted there) and one active row: its device_id is unique among active devices only.
ALTER TABLE devices DROP CONSTRAINT devices_device_id_key;
CREATE INDEX devices_by_device_id ON devices (device_id);
CREATE UNIQUE INDEX devices_active_by_device_id ON devices (device_id) WHERE removed_at IS NULL;
