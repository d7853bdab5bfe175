-- Sensors that push in their vendor's format: one per device (by device_id, which survives moves),
-- found by (vendor, serial).
CREATE TABLE sensors (
    device_id TEXT PRIMARY KEY,
    vendor TEXT NOT NULL,
    serial TEXT NOT NULL,
    in_name TEXT NOT NULL,
    out_name TEXT NOT NULL,
    lines TEXT NOT NULL,
    reverse INTEGER NOT NULL,
    last_push_at INTEGER,
    last_agent INTEGER,
    last_package INTEGER,
    package_gaps INTEGER NOT NULL DEFAULT 0,
    UNIQUE (vendor, serial)
) WITHOUT ROWID;
-- Vendor intervals as last sent, mapped to in and out; minute = the minute holding the start.
CREATE TABLE sensor_intervals (
    device_id TEXT NOT NULL,
    key TEXT NOT NULL,
    minute INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    exits INTEGER NOT NULL,
    PRIMARY KEY (device_id, key)
) WITHOUT ROWID;
CREATE INDEX sensor_intervals_by_minute ON sensor_intervals (device_id, minute);
-- Readings of cumulative registers (role 'in' or 'out'), at = Unix milliseconds.
CREATE TABLE sensor_readings (
    device_id TEXT NOT NULL,
    role TEXT NOT NULL,
    at INTEGER NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (device_id, role, at)
) WITHOUT ROWID;
-- Serials that pushed without being registered.
CREATE TABLE unknown_sensors (
    vendor TEXT NOT NULL,
    serial TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    pushes INTEGER NOT NULL,
    PRIMARY KEY (vendor, serial)
) WITHOUT ROWID;
