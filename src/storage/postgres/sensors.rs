//! Sensors pushing in their vendor's format: registration, unknown serials, and pushes.

use super::*;

const SENSOR_COLUMNS: &str = "device_id, vendor, serial, in_name, out_name, lines, reverse, last_push_at, \
                              last_package, package_gaps";

fn sensor_of(row: &tokio_postgres::Row) -> Result<Sensor> {
    Ok(Sensor {
        device_id: DeviceId::parse(row.get(0)).map_err(StorageError::Invalid)?,
        config: SensorConfig {
            vendor: Vendor::parse(row.get(1)).map_err(StorageError::Invalid)?,
            serial: row.get(2),
            in_name: row.get(3),
            out_name: row.get(4),
            lines: SensorConfig::parse_lines(row.get(5)).map_err(StorageError::Invalid)?,
            reverse: row.get(6),
        },
        last_push_at: row.get::<_, Option<i64>>(7).map(stored_instant),
        last_package: row.get(8),
        package_gaps: row.get(9),
    })
}

#[async_trait]
impl SensorStore for PostgresStorage {
    async fn add_sensor(&self, device_id: DeviceId, config: SensorConfig) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let exists = transaction
            .query_opt("SELECT id FROM devices WHERE device_id = $1 AND removed_at IS NULL", &[&device_id.as_str()])
            .await?;
        if exists.is_none() {
            return Err(StorageError::NotFound(format!("device {device_id} does not exist")));
        }
        let inserted = transaction
            .execute(
                "INSERT INTO sensors (device_id, vendor, serial, in_name, out_name, lines, reverse)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &device_id.as_str(),
                    &config.vendor.as_str(),
                    &config.serial,
                    &config.in_name,
                    &config.out_name,
                    &config.lines_text(),
                    &config.reverse,
                ],
            )
            .await;
        reject_duplicate(inserted, || {
            format!("a sensor {} {} or a sensor of device {device_id} exists already", config.vendor, config.serial)
        })?;
        transaction.commit().await?;
        Ok(())
    }

    async fn sensors(&self) -> Result<Vec<Sensor>> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {SENSOR_COLUMNS} FROM sensors ORDER BY device_id"), &[]).await?;
        rows.iter().map(sensor_of).collect()
    }

    async fn sensor_by_serial(&self, vendor: Vendor, serial: &str) -> Result<Option<Sensor>> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!("SELECT {SENSOR_COLUMNS} FROM sensors WHERE vendor = $1 AND serial = $2"))
            .await?;
        let row = client.query_opt(&statement, &[&vendor.as_str(), &serial]).await?;
        row.as_ref().map(sensor_of).transpose()
    }

    async fn record_unknown_sensor(&self, vendor: Vendor, serial: &str, at: Timestamp) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO unknown_sensors (vendor, serial, first_seen, last_seen, pushes) VALUES ($1, $2, $3, $3, 1)
                 ON CONFLICT (vendor, serial) DO UPDATE
                 SET last_seen = excluded.last_seen, pushes = unknown_sensors.pushes + 1",
                &[&vendor.as_str(), &serial, &at.as_millisecond()],
            )
            .await?;
        Ok(())
    }

    async fn unknown_sensors(&self) -> Result<Vec<UnknownSensor>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT vendor, serial, first_seen, last_seen, pushes FROM unknown_sensors u
                 WHERE NOT EXISTS (SELECT 1 FROM sensors s WHERE s.vendor = u.vendor AND s.serial = u.serial)
                 ORDER BY vendor, serial",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UnknownSensor {
                    vendor: Vendor::parse(row.get(0)).map_err(StorageError::Invalid)?,
                    serial: row.get(1),
                    first_seen: stored_instant(row.get(2)),
                    last_seen: stored_instant(row.get(3)),
                    pushes: row.get(4),
                })
            })
            .collect()
    }

    async fn push_sensor(&self, push: SensorPush) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        transaction.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PUBLISH_LOCK]).await?;
        let device = push.device_id.as_str();
        // One push of a sensor at a time: each recomputes minutes from what the others stored.
        let sensor = transaction
            .query_one("SELECT last_agent, last_package FROM sensors WHERE device_id = $1 FOR UPDATE", &[&device])
            .await?;
        let last_package: Option<(i64, i64)> = sensor.get::<_, Option<i64>>(0).zip(sensor.get::<_, Option<i64>>(1));
        let mut touched = BTreeSet::new();
        let intervals = &push.observations.intervals;
        if !intervals.is_empty() {
            let keys: Vec<&str> = intervals.iter().map(|i| i.key.as_str()).collect();
            let minutes: Vec<i64> = intervals.iter().map(|i| i.minute.unix_seconds()).collect();
            let entries: Vec<i64> = intervals.iter().map(|i| i64::from(i.counts.entries)).collect();
            let exits: Vec<i64> = intervals.iter().map(|i| i64::from(i.counts.exits)).collect();
            let old = transaction
                .query("SELECT minute FROM sensor_intervals WHERE device_id = $1 AND key = ANY($2)", &[&device, &keys])
                .await?;
            touched.extend(old.iter().map(|row| stored_minute(row.get(0))));
            touched.extend(intervals.iter().map(|i| i.minute));
            // Within one push a key sent twice keeps its last copy.
            transaction
                .execute(
                    "INSERT INTO sensor_intervals (device_id, key, minute, entries, exits)
                     SELECT DISTINCT ON (key) $1, key, minute, entries, exits
                     FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) WITH ORDINALITY
                         AS u (key, minute, entries, exits, n)
                     ORDER BY key, n DESC
                     ON CONFLICT (device_id, key) DO UPDATE
                     SET minute = excluded.minute, entries = excluded.entries, exits = excluded.exits",
                    &[&device, &keys, &minutes, &entries, &exits],
                )
                .await?;
        }
        let mut new_readings = Vec::new();
        for reading in &push.observations.readings {
            let value = i64::try_from(reading.value).map_err(|_| StorageError::Invalid("reading too large".into()))?;
            let inserted = transaction
                .execute(
                    "INSERT INTO sensor_readings (device_id, role, at, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (device_id, role, at) DO NOTHING",
                    &[&device, &reading.role.as_str(), &reading.at.as_millisecond(), &value],
                )
                .await?;
            if inserted > 0 {
                new_readings.push(*reading);
            }
        }
        for reading in &new_readings {
            let previous: Option<i64> = transaction
                .query_one(
                    "SELECT max(at) FROM sensor_readings WHERE device_id = $1 AND role = $2 AND at < $3",
                    &[&device, &reading.role.as_str(), &reading.at.as_millisecond()],
                )
                .await?
                .get(0);
            touched.extend(minutes_touched_by_reading(previous.map(stored_instant), reading.at));
        }
        let mut written = 0;
        if let (Some(first), Some(last)) = (touched.first().copied(), touched.last().copied()) {
            let rows = transaction
                .query(
                    "SELECT minute, sum(entries)::bigint, sum(exits)::bigint FROM sensor_intervals
                     WHERE device_id = $1 AND minute BETWEEN $2 AND $3 GROUP BY minute",
                    &[&device, &first.unix_seconds(), &last.unix_seconds()],
                )
                .await?;
            let totals: BTreeMap<Minute, (u64, u64)> = rows
                .iter()
                .map(|row| (stored_minute(row.get(0)), (row.get::<_, i64>(1) as u64, row.get::<_, i64>(2) as u64)))
                .collect();
            let (low, high) = (first.unix_seconds() * 1000, last.plus_minutes(1).unix_seconds() * 1000);
            let mut readings = Vec::new();
            for role in [Role::In, Role::Out] {
                let rows = transaction
                    .query(
                        "(SELECT at, value FROM sensor_readings
                          WHERE device_id = $1 AND role = $2 AND at >= $3 AND at < $4)
                         UNION ALL
                         (SELECT at, value FROM sensor_readings WHERE device_id = $1 AND role = $2 AND at >= $4
                          ORDER BY at LIMIT 1)
                         ORDER BY at",
                        &[&device, &role.as_str(), &low, &high],
                    )
                    .await?;
                let values: Vec<(Timestamp, u64)> =
                    rows.iter().map(|row| (stored_instant(row.get(0)), row.get::<_, i64>(1) as u64)).collect();
                if !values.is_empty() {
                    readings.push((role, values));
                }
            }
            let bins = sensor_bins(push.device, &touched, &totals, &readings);
            let stores = vec![push.store; bins.len()];
            super::ingest::write_pending(&transaction, &bins, &stores).await?;
            transaction
                .execute(
                    "UPDATE devices SET last_seen_at = $2, last_bin_minute = greatest(coalesce(last_bin_minute, $3), $3)
                     WHERE id = $1",
                    &[&push.device, &push.received_at.as_millisecond(), &last.unix_seconds()],
                )
                .await?;
            written = bins.len() as u64;
        }
        let (last, skipped) = match push.package {
            Some(new) => {
                let (last, skipped) = package_step(last_package, new);
                (Some(last), skipped)
            }
            None => (last_package, 0),
        };
        transaction
            .execute(
                "UPDATE sensors SET last_push_at = $2, last_agent = $3, last_package = $4,
                     package_gaps = package_gaps + $5
                 WHERE device_id = $1",
                &[&device, &push.received_at.as_millisecond(), &last.map(|l| l.0), &last.map(|l| l.1), &skipped],
            )
            .await?;
        transaction.commit().await?;
        Ok(written)
    }
}
