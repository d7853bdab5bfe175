//! Sensors pushing in their vendor's format: registration, unknown serials, and pushes.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

const SENSOR_COLUMNS: &str = "device_id, vendor, serial, in_name, out_name, lines, reverse, last_push_at, \
                              last_package, package_gaps";

fn sensor_row(row: &rusqlite::Row) -> rusqlite::Result<SensorRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

type SensorRow = (String, String, String, String, String, String, bool, Option<i64>, Option<i64>, i64);

fn sensor_of(row: SensorRow) -> Result<Sensor> {
    let (device_id, vendor, serial, in_name, out_name, lines, reverse, last_push_at, last_package, package_gaps) = row;
    Ok(Sensor {
        device_id: DeviceId::parse(&device_id).map_err(StorageError::Invalid)?,
        config: SensorConfig {
            vendor: Vendor::parse(&vendor).map_err(StorageError::Invalid)?,
            serial,
            in_name,
            out_name,
            lines: SensorConfig::parse_lines(&lines).map_err(StorageError::Invalid)?,
            reverse,
        },
        last_push_at: last_push_at.map(stored_instant),
        last_package,
        package_gaps,
    })
}

/// Every sensor's device and configuration (for the catalog).
pub(super) fn configurations(connection: &Connection) -> Result<Vec<(DeviceId, SensorConfig)>> {
    let mut statement = connection.prepare(&format!("SELECT {SENSOR_COLUMNS} FROM sensors"))?;
    let rows = statement.query_map([], sensor_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(|row| sensor_of(row).map(|sensor| (sensor.device_id, sensor.config))).collect()
}

#[async_trait]
impl SensorStore for SqliteStorage {
    async fn add_sensor(
        &self,
        device_id: DeviceId,
        store: StoreCode,
        token_hash: String,
        config: SensorConfig,
    ) -> Result<()> {
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                catalog::insert_device(transaction, &device_id, &store, &token_hash)?;
                let inserted = transaction.execute(
                    "INSERT INTO sensors (device_id, vendor, serial, in_name, out_name, lines, reverse)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        device_id.as_str(),
                        config.vendor.as_str(),
                        config.serial,
                        config.in_name,
                        config.out_name,
                        config.lines_text(),
                        config.reverse
                    ],
                );
                reject_duplicate(inserted, || {
                    format!("the {} sensor {} is already registered", config.vendor, config.serial)
                })?;
                Ok(())
            })
        })
        .await
    }

    async fn sensors(&self) -> Result<Vec<Sensor>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                let mut statement =
                    connection.prepare(&format!("SELECT {SENSOR_COLUMNS} FROM sensors ORDER BY device_id"))?;
                let rows = statement.query_map([], sensor_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(sensor_of).collect()
            })
        })
        .await
    }

    async fn record_unknown_sensor(&self, vendor: Vendor, serial: &str, at: Timestamp) -> Result<()> {
        let serial = serial.to_owned();
        self.run(Access::Write, move |inner| {
            inner.write(|transaction| {
                transaction.execute(
                    "INSERT INTO unknown_sensors (vendor, serial, first_seen, last_seen, pushes) VALUES (?1, ?2, ?3, ?3, 1)
                     ON CONFLICT (vendor, serial) DO UPDATE SET last_seen = excluded.last_seen, pushes = pushes + 1",
                    params![vendor.as_str(), serial, at.as_millisecond()],
                )?;
                Ok(())
            })
        })
        .await
    }

    async fn unknown_sensors(&self) -> Result<Vec<UnknownSensor>> {
        self.run(Access::Read, move |inner| {
            inner.reader(|connection| {
                let mut statement = connection.prepare(
                    "SELECT vendor, serial, first_seen, last_seen, pushes FROM unknown_sensors u
                     WHERE NOT EXISTS (SELECT 1 FROM sensors s WHERE s.vendor = u.vendor AND s.serial = u.serial)
                     ORDER BY vendor, serial",
                )?;
                let rows = statement
                    .query_map([], |row| {
                        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(vendor, serial, first, last, pushes)| {
                        Ok(UnknownSensor {
                            vendor: Vendor::parse(&vendor).map_err(StorageError::Invalid)?,
                            serial,
                            first_seen: stored_instant(first),
                            last_seen: stored_instant(last),
                            pushes,
                        })
                    })
                    .collect()
            })
        })
        .await
    }

    async fn push_sensor(&self, push: SensorPush) -> Result<u64> {
        let (done, mut written) = tokio::sync::oneshot::channel();
        self.inner.queued_pushes.lock().unwrap().push(QueuedPush { push, done });
        // A trip to the writer already under way may take this push with its group; otherwise this
        // call's own trip writes it, with whatever else queued by then.
        let _slot = tokio::select! {
            biased;
            written = &mut written => return written.map_err(backend)?,
            slot = self.inner.write_slots.acquire() => slot.map_err(backend)?,
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.write_queued_pushes()).await.map_err(backend)?;
        written.await.map_err(backend)?
    }
}

/// A push waiting for the writer, and where its outcome goes.
pub(super) struct QueuedPush {
    push: SensorPush,
    done: tokio::sync::oneshot::Sender<Result<u64>>,
}

impl Inner {
    /// Writes every queued push in one transaction, each in a savepoint of its own: a push that fails
    /// leaves nothing behind and does not fail the others; all are answered once the commit returned.
    fn write_queued_pushes(&self) {
        let mut connection = match self.writer() {
            Ok(connection) => connection,
            Err(error) => {
                let message = error.to_string();
                for queued in std::mem::take(&mut *self.queued_pushes.lock().unwrap()) {
                    let _ = queued.done.send(Err(StorageError::Invalid(message.clone())));
                }
                return;
            }
        };
        // Taken with the writer held: pushes that queued while it was busy join this group.
        let group = std::mem::take(&mut *self.queued_pushes.lock().unwrap());
        if group.is_empty() {
            return;
        }
        let mut outcomes = Vec::with_capacity(group.len());
        let committed = (|| -> Result<()> {
            let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for queued in &group {
                let savepoint = transaction.savepoint()?;
                let outcome = write_push(&savepoint, &queued.push);
                if outcome.is_ok() {
                    savepoint.commit()?;
                } // else dropped: rolled back to the savepoint.
                outcomes.push(outcome);
            }
            transaction.commit()?;
            Ok(())
        })();
        match committed {
            Ok(()) => {
                for (queued, outcome) in group.into_iter().zip(outcomes) {
                    let _ = queued.done.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for queued in group {
                    let _ = queued.done.send(Err(backend(std::io::Error::other(message.clone()))));
                }
            }
        }
    }
}

fn write_push(transaction: &Connection, push: &SensorPush) -> Result<u64> {
    let device = push.device_id.as_str();
    let mut touched = BTreeSet::new();
    {
        // A key sent again at another minute (only a local time can be, after its store's zone changed)
        // leaves its old minute to recompute too: the old minutes of the push's keys, in one query.
        let keys: Vec<&str> = push.observations.intervals.iter().map(|interval| interval.key.as_str()).collect();
        // CROSS JOIN keeps the keys the outer loop, each probing the primary key: left to itself the
        // planner scans all of the device's intervals instead, a cost that grows with its history.
        let mut old = transaction.prepare_cached(
            "SELECT s.minute FROM json_each(?2) AS k CROSS JOIN sensor_intervals AS s
             ON s.device_id = ?1 AND s.key = k.value",
        )?;
        let keys = serde_json::to_string(&keys).map_err(backend)?;
        for minute in old.query_map(params![device, keys], |row| row.get::<_, i64>(0))? {
            touched.insert(stored_minute(minute?));
        }
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO sensor_intervals (device_id, key, minute, entries, exits) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (device_id, key) DO UPDATE
             SET minute = excluded.minute, entries = excluded.entries, exits = excluded.exits",
        )?;
        for interval in &push.observations.intervals {
            let minute = interval.minute.unix_seconds();
            upsert.execute(params![device, interval.key, minute, interval.counts.entries, interval.counts.exits])?;
            touched.insert(interval.minute);
        }
    }
    let mut new_readings = Vec::new();
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO sensor_readings (device_id, role, at, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, role, at) DO NOTHING",
        )?;
        for reading in &push.observations.readings {
            let at = reading.at.as_millisecond();
            let value = i64::try_from(reading.value).map_err(|_| StorageError::Invalid("reading too large".into()))?;
            if insert.execute(params![device, reading.role.as_str(), at, value])? > 0 {
                new_readings.push(*reading);
            }
        }
    }
    for reading in &new_readings {
        let previous: Option<i64> = transaction
            .prepare_cached("SELECT max(at) FROM sensor_readings WHERE device_id = ?1 AND role = ?2 AND at < ?3")?
            .query_row(params![device, reading.role.as_str(), reading.at.as_millisecond()], |row| row.get(0))?;
        touched.extend(minutes_touched_by_reading(previous.map(stored_instant), reading.at));
    }
    let (Some(first), Some(last)) = (touched.first().copied(), touched.last().copied()) else {
        return finish_push(transaction, push, 0);
    };
    let mut totals = BTreeMap::new();
    {
        let mut statement = transaction.prepare_cached(
            "SELECT minute, sum(entries), sum(exits) FROM sensor_intervals
             WHERE device_id = ?1 AND minute BETWEEN ?2 AND ?3 GROUP BY minute",
        )?;
        let rows = statement.query_map(params![device, first.unix_seconds(), last.unix_seconds()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (minute, entries, exits) = row?;
            totals.insert(stored_minute(minute), (entries as u64, exits as u64));
        }
    }
    let (low, high) = (first.unix_seconds() * 1000, last.plus_minutes(1).unix_seconds() * 1000);
    let mut readings = Vec::new();
    for role in [Role::In, Role::Out] {
        let mut values: Vec<(Timestamp, u64)> = Vec::new();
        let mut statement = transaction.prepare_cached(
            "SELECT at, value FROM (
                 SELECT at, value FROM sensor_readings WHERE device_id = ?1 AND role = ?2 AND at >= ?3 AND at < ?4
                 UNION ALL
                 SELECT at, value FROM (SELECT at, value FROM sensor_readings
                     WHERE device_id = ?1 AND role = ?2 AND at >= ?4 ORDER BY at LIMIT 1))
             ORDER BY at",
        )?;
        let rows = statement.query_map(params![device, role.as_str(), low, high], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (at, value) = row?;
            values.push((stored_instant(at), value as u64));
        }
        if !values.is_empty() {
            readings.push((role, values));
        }
    }
    let bins = sensor_bins(push.device, &touched, &totals, &readings);
    {
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO pending_bins (device_id, minute, entries, exits) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, minute) DO UPDATE SET entries = excluded.entries, exits = excluded.exits",
        )?;
        for bin in &bins {
            upsert.execute(params![bin.device, bin.minute.unix_seconds(), bin.counts.entries, bin.counts.exits])?;
        }
    }
    transaction.execute(
        "UPDATE devices SET last_seen_at = ?2, last_bin_minute = max(coalesce(last_bin_minute, ?3), ?3) WHERE id = ?1",
        params![push.device, push.received_at.as_millisecond(), last.unix_seconds()],
    )?;
    finish_push(transaction, push, bins.len() as u64)
}

/// Records the push's time and package sequence on the sensor.
fn finish_push(transaction: &Connection, push: &SensorPush, written: u64) -> Result<u64> {
    let device = push.device_id.as_str();
    let (agent, package): (Option<i64>, Option<i64>) = transaction.query_row(
        "SELECT last_agent, last_package FROM sensors WHERE device_id = ?1",
        [device],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (last, skipped) = match push.package {
        Some(new) => {
            let (last, skipped) = package_step(agent.zip(package), new);
            (Some(last), skipped)
        }
        None => (agent.zip(package), 0),
    };
    transaction.execute(
        "UPDATE sensors SET last_push_at = ?2, last_agent = ?3, last_package = ?4, package_gaps = package_gaps + ?5
         WHERE device_id = ?1",
        params![device, push.received_at.as_millisecond(), last.map(|l| l.0), last.map(|l| l.1), skipped],
    )?;
    Ok(written)
}
