-- Sensors that push in their vendor's format: one per device (by device_id, which survives moves),
-- found by (vendor, serial).
CREATE TABLE sensors (
    device_id text PRIMARY KEY,
    vendor text NOT NULL,
    serial text NOT NULL,
    in_name text NOT NULL,
    out_name text NOT NULL,
    lines text NOT NULL,
    reverse boolean NOT NULL,
    last_push_at bigint,
    last_agent bigint,
    last_package bigint,
    package_gaps bigint NOT NULL DEFAULT 0,
    UNIQUE (vendor, serial)
);
-- Vendor intervals as last sent, mapped to in and out; minute = the minute holding the start.
CREATE TABLE sensor_intervals (
    device_id text NOT NULL,
    key text NOT NULL,
    minute bigint NOT NULL,
    entries bigint NOT NULL,
    exits bigint NOT NULL,
    PRIMARY KEY (device_id, key)
);
CREATE INDEX sensor_intervals_by_minute ON sensor_intervals (device_id, minute);
-- Readings of cumulative registers (role 'in' or 'out'), at = Unix milliseconds.
CREATE TABLE sensor_readings (
    device_id text NOT NULL,
    role text NOT NULL,
    at bigint NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (device_id, role, at)
);
-- Serials that pushed without being registered.
CREATE TABLE unknown_sensors (
    vendor text NOT NULL,
    serial text NOT NULL,
    first_seen bigint NOT NULL,
    last_seen bigint NOT NULL,
    pushes bigint NOT NULL,
    PRIMARY KEY (vendor, serial)
);
