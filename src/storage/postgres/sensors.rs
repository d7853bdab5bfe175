//! Sensors pushing in their vendor's format: registration, unknown serials, and pushes.

use super::*;
use crate::domain::sensors::Reading;

pub(super) const SENSOR_COLUMNS: &str = "device_id, vendor, serial, in_name, out_name, lines, reverse, last_push_at, \
                              last_package, package_gaps";

pub(super) fn sensor_of(row: &tokio_postgres::Row) -> Result<Sensor> {
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
    async fn add_sensor(
        &self,
        device_id: DeviceId,
        store: StoreCode,
        token_hash: String,
        config: SensorConfig,
    ) -> Result<()> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        super::catalog::insert_device(&transaction, &device_id, &store, &token_hash).await?;
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
        reject_duplicate(inserted, || format!("the {} sensor {} is already registered", config.vendor, config.serial))?;
        transaction.commit().await?;
        Ok(())
    }

    async fn sensors(&self) -> Result<Vec<Sensor>> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {SENSOR_COLUMNS} FROM sensors ORDER BY device_id"), &[]).await?;
        rows.iter().map(sensor_of).collect()
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
        let written = write_push(&transaction, &push).await?;
        transaction.commit().await?;
        Ok(written)
    }
}

/// The statements of a push, prepared once per connection. Each step's statements are sent together
/// (tokio-postgres pipelines futures polled at once, in the order polled): a push takes five round
/// trips whatever it holds. A push takes no lock against a publication (see `publish_in`).
///
/// One push of a sensor at a time: each recomputes minutes from what the others stored.
const LOCK_SENSOR: &str = "SELECT last_agent, last_package FROM sensors WHERE device_id = $1 FOR UPDATE";
const OLD_MINUTES: &str = "SELECT minute FROM sensor_intervals WHERE device_id = $1 AND key = ANY($2)";
/// Within one push a key sent twice keeps its last copy.
const UPSERT_INTERVALS: &str = "INSERT INTO sensor_intervals (device_id, key, minute, entries, exits)
     SELECT DISTINCT ON (key) $1, key, minute, entries, exits
     FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) WITH ORDINALITY
         AS u (key, minute, entries, exits, n)
     ORDER BY key, n DESC
     ON CONFLICT (device_id, key) DO UPDATE
     SET minute = excluded.minute, entries = excluded.entries, exits = excluded.exits";
const INSERT_READING: &str = "INSERT INTO sensor_readings (device_id, role, at, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (device_id, role, at) DO NOTHING";
const PREVIOUS_READING: &str = "SELECT max(at) FROM sensor_readings WHERE device_id = $1 AND role = $2 AND at < $3";
const MINUTE_TOTALS: &str = "SELECT minute, sum(entries)::bigint, sum(exits)::bigint FROM sensor_intervals
     WHERE device_id = $1 AND minute BETWEEN $2 AND $3 GROUP BY minute";
/// A register's readings in the touched minutes and the first one after them (which ends the last
/// interval).
const READINGS_AROUND: &str = "(SELECT at, value FROM sensor_readings
      WHERE device_id = $1 AND role = $2 AND at >= $3 AND at < $4)
     UNION ALL
     (SELECT at, value FROM sensor_readings WHERE device_id = $1 AND role = $2 AND at >= $4 ORDER BY at LIMIT 1)
     ORDER BY at";
const TOUCH_DEVICE: &str = "UPDATE devices
     SET last_seen_at = $2, last_bin_minute = greatest(coalesce(last_bin_minute, $3), $3) WHERE id = $1";
const FINISH: &str = "UPDATE sensors SET last_push_at = $2, last_agent = $3, last_package = $4,
     package_gaps = package_gaps + $5 WHERE device_id = $1";

async fn write_push(transaction: &Transaction<'_>, push: &SensorPush) -> Result<u64> {
    let device = push.device_id.as_str();
    let (lock_sensor, old_minutes, upsert_intervals) = tokio::try_join!(
        transaction.prepare_cached(LOCK_SENSOR),
        transaction.prepare_cached(OLD_MINUTES),
        transaction.prepare_cached(UPSERT_INTERVALS),
    )?;
    let intervals = &push.observations.intervals;
    let keys: Vec<&str> = intervals.iter().map(|i| i.key.as_str()).collect();
    let minutes: Vec<i64> = intervals.iter().map(|i| i.minute.unix_seconds()).collect();
    let entries: Vec<i64> = intervals.iter().map(|i| i64::from(i.counts.entries)).collect();
    let exits: Vec<i64> = intervals.iter().map(|i| i64::from(i.counts.exits)).collect();
    // The old minutes are read before the upsert replaces them: statements run in the order sent.
    let (sensor, old, _) = tokio::try_join!(
        async { transaction.query_one(&lock_sensor, &[&device]).await },
        async { transaction.query(&old_minutes, &[&device, &keys]).await },
        async { transaction.execute(&upsert_intervals, &[&device, &keys, &minutes, &entries, &exits]).await },
    )?;
    let last_package: Option<(i64, i64)> = sensor.get::<_, Option<i64>>(0).zip(sensor.get::<_, Option<i64>>(1));
    let mut touched: BTreeSet<Minute> = old.iter().map(|row| stored_minute(row.get(0))).collect();
    touched.extend(intervals.iter().map(|i| i.minute));

    let readings = &push.observations.readings;
    if !readings.is_empty() {
        let (insert, previous) =
            tokio::try_join!(transaction.prepare_cached(INSERT_READING), transaction.prepare_cached(PREVIOUS_READING))?;
        let values = readings
            .iter()
            .map(|r| i64::try_from(r.value).map_err(|_| StorageError::Invalid("reading too large".into())))
            .collect::<Result<Vec<i64>>>()?;
        let at: Vec<i64> = readings.iter().map(|r| r.at.as_millisecond()).collect();
        let inserted = futures_util::future::try_join_all(readings.iter().zip(&at).zip(&values).map(
            |((reading, at), value)| async {
                transaction.execute(&insert, &[&device, &reading.role.as_str(), at, value]).await
            },
        ))
        .await?;
        let new_readings: Vec<(&Reading, &i64)> =
            readings.iter().zip(&at).zip(inserted).filter(|(_, n)| *n > 0).map(|(new, _)| new).collect();
        let before = futures_util::future::try_join_all(new_readings.iter().map(|(reading, at)| async {
            transaction.query_one(&previous, &[&device, &reading.role.as_str(), *at]).await
        }))
        .await?;
        for ((reading, _), row) in new_readings.iter().zip(before) {
            let previous: Option<i64> = row.get(0);
            touched.extend(minutes_touched_by_reading(previous.map(stored_instant), reading.at));
        }
    }

    let (touch_device, finish) =
        tokio::try_join!(transaction.prepare_cached(TOUCH_DEVICE), transaction.prepare_cached(FINISH))?;
    let (last, skipped) = match push.package {
        Some(new) => {
            let (last, skipped) = package_step(last_package, new);
            (Some(last), skipped)
        }
        None => (last_package, 0),
    };
    let received_at = push.received_at.as_millisecond();
    let (last_agent, last_number) = (last.map(|l| l.0), last.map(|l| l.1));
    let finished =
        async { transaction.execute(&finish, &[&device, &received_at, &last_agent, &last_number, &skipped]).await };
    let (Some(first), Some(last)) = (touched.first().copied(), touched.last().copied()) else {
        finished.await?;
        return Ok(0);
    };
    let (totals, readings_around) =
        tokio::try_join!(transaction.prepare_cached(MINUTE_TOTALS), transaction.prepare_cached(READINGS_AROUND))?;
    let (low, high) = (first.unix_seconds() * 1000, last.plus_minutes(1).unix_seconds() * 1000);
    let (total_rows, in_rows, out_rows) = tokio::try_join!(
        async { transaction.query(&totals, &[&device, &first.unix_seconds(), &last.unix_seconds()]).await },
        async { transaction.query(&readings_around, &[&device, &Role::In.as_str(), &low, &high]).await },
        async { transaction.query(&readings_around, &[&device, &Role::Out.as_str(), &low, &high]).await },
    )?;
    let totals: BTreeMap<Minute, (u64, u64)> = total_rows
        .iter()
        .map(|row| (stored_minute(row.get(0)), (row.get::<_, i64>(1) as u64, row.get::<_, i64>(2) as u64)))
        .collect();
    let mut register_readings = Vec::new();
    for (role, rows) in [(Role::In, in_rows), (Role::Out, out_rows)] {
        let values: Vec<(Timestamp, u64)> =
            rows.iter().map(|row| (stored_instant(row.get(0)), row.get::<_, i64>(1) as u64)).collect();
        if !values.is_empty() {
            register_readings.push((role, values));
        }
    }
    let bins = sensor_bins(push.device, &touched, &totals, &register_readings);
    let stores = vec![push.store; bins.len()];
    tokio::try_join!(
        async { transaction.execute(&touch_device, &[&push.device, &received_at, &last.unix_seconds()]).await },
        finished,
    )?;
    // Not pipelined with the statements above: a large write may roll back to a savepoint of its own.
    super::ingest::write_pending(transaction, &bins, &stores).await?;
    Ok(bins.len() as u64)
}
