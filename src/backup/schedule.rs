//! Backups as a job: one run (audited, measured, pruned) for the CLI and the scheduler
//! inside `serve` (`BULWARK_BACKUP_SCHEDULE`).
//!
//! With several instances only one backs up per slot: the run holds a PostgreSQL advisory
//! lock, and under it checks the audit log for a successful backup since the slot began
//! (so an instance whose clock fires a little later does not take a second one). SQLite
//! serves one instance, which needs no lock. A failed run is retried five minutes later.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{BackupError, Created, Location};
use crate::app::AppState;
use crate::audit::{self, Action, Event, RequestContext};
use crate::clock::Timestamp;

/// When scheduled backups run (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// `daily HH:MM`
    Daily { hour: u8, minute: u8 },
    /// `every DURATION` (at least a minute): for frequent backups and for tests.
    Every(Duration),
}

impl Schedule {
    pub fn parse(value: &str) -> Result<Schedule, String> {
        let value = value.trim();
        if let Some(time) = value.strip_prefix("daily ") {
            let (h, m) = time.trim().split_once(':').ok_or("use `daily HH:MM` (UTC)")?;
            let hour: u8 = h.parse().map_err(|_| "the hour is 00 to 23")?;
            let minute: u8 = m.parse().map_err(|_| "the minute is 00 to 59")?;
            if hour > 23 || minute > 59 {
                return Err("use `daily HH:MM` (UTC) with a real time".into());
            }
            return Ok(Schedule::Daily { hour, minute });
        }
        if let Some(every) = value.strip_prefix("every ") {
            let every = crate::config::parse_duration(every.trim())?;
            if every < Duration::from_secs(60) {
                return Err("backups run at most once a minute".into());
            }
            return Ok(Schedule::Every(every));
        }
        Err("use `daily HH:MM` (UTC) or `every DURATION` (e.g. `every 6h`)".into())
    }

    /// The start of the slot `now` is in: the latest scheduled instant at or before it.
    pub fn slot_start(self, now: Timestamp) -> Timestamp {
        const DAY: i64 = 86_400_000;
        let ms = now.millis();
        match self {
            Schedule::Daily { hour, minute } => {
                let offset = (i64::from(hour) * 60 + i64::from(minute)) * 60_000;
                let today = ms.div_euclid(DAY) * DAY + offset;
                Timestamp::from_millis(if today <= ms { today } else { today - DAY })
            }
            Schedule::Every(every) => {
                let step = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
                Timestamp::from_millis(ms.div_euclid(step) * step)
            }
        }
    }
}

/// `bulwark-20261205T020000Z.age`: names sort by time.
pub fn archive_name(at: Timestamp) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(at.secs())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "bulwark-{:04}{:02}{:02}T{:02}{:02}{:02}Z.age",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// Deletes all but the newest `keep` archives named by `archive_name` in `dir`.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bulwark-") && n.ends_with(".age"))
        })
        .collect();
    archives.sort();
    let excess = archives.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = archives.into_iter().take(excess).collect();
    for path in &removed {
        std::fs::remove_file(path)?;
    }
    Ok(removed)
}

/// One backup to `to` (a file or an S3 key; a directory or a key ending in `/` gets a
/// dated name, and a directory keeps the newest `BULWARK_BACKUP_KEEP` — an S3 prefix's
/// lifecycle rules do that for a bucket), with its metrics and its audit event in the
/// platform chain.
pub async fn run(
    app: &AppState,
    to: &Location,
    by: &'static str,
) -> Result<(Location, Created), BackupError> {
    let started = Instant::now();
    let target = to.dated(&archive_name(Timestamp::now()));
    let config = app.config();
    let outcome = super::create(
        app.store(),
        app.storage(),
        &config.storage,
        app.keys(),
        &config.backup.recipients,
        &target,
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let event = Event::new(Action::BackupCreate)
        .by_system(by)
        .detail("duration_ms", (seconds * 1000.0) as u64);
    let event = match &outcome {
        Ok(created) => {
            let size = created.size;
            metrics::counter!("backups_total", "outcome" => "success").increment(1);
            publish_last_success(Timestamp::now());
            metrics::gauge!("backup_last_duration_seconds").set(seconds);
            metrics::gauge!("backup_last_size_bytes").set(size as f64);
            let rows: u64 = created.manifest.tables.iter().map(|t| t.rows).sum();
            event.detail("bytes", size).detail("rows", rows)
        }
        Err(err) => {
            metrics::counter!("backups_total", "outcome" => "failure").increment(1);
            tracing::error!(error = %err, "backup failed");
            event.failure().detail("reason", err.to_string())
        }
    };
    let mut tx = app.store().system_tx().await?;
    audit::record_platform(&mut tx, None, &RequestContext::system(), event).await?;
    tx.commit().await?;
    let created = outcome?;
    if let Location::File(dir) = to
        && dir.is_dir()
    {
        let removed =
            prune(dir, app.config().backup.keep).map_err(|err| BackupError::io(dir, err))?;
        if !removed.is_empty() {
            tracing::info!(removed = removed.len(), "older backups pruned");
        }
    }
    Ok((target, created))
}

/// Start-up: the metrics the backup alerts read, from the audit log's latest success (so a
/// restart does not look like a missing backup).
pub async fn publish_state(app: &AppState) -> Result<(), BackupError> {
    let enabled = app.config().backup.schedule.is_some();
    metrics::gauge!("backup_schedule_enabled").set(if enabled { 1.0 } else { 0.0 });
    metrics::counter!("backups_total", "outcome" => "success").increment(0);
    metrics::counter!("backups_total", "outcome" => "failure").increment(0);
    let mut tx = app.store().system_read().await?;
    let last = super::store::last_success(&mut tx).await?;
    tx.commit().await?;
    publish_last_success(last.unwrap_or(Timestamp::from_millis(0)));
    Ok(())
}

/// The newest success this process has seen, exported: it never moves back (a start-up read
/// that raced a backup's audit event, as a second instance in one process can, cannot hide
/// the backup that just succeeded).
fn publish_last_success(at: Timestamp) {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let newest = LAST.fetch_max(at.secs(), std::sync::atomic::Ordering::Relaxed).max(at.secs());
    metrics::gauge!("backup_last_success_timestamp_seconds").set(newest as f64);
}

/// The scheduler task of `serve`: checks every 10 s whether the current slot has its backup.
pub async fn scheduler(app: AppState) {
    let Some(schedule) = app.config().backup.schedule else { return };
    let to = app.config().backup.to.clone();
    if let Location::File(dir) = &to
        && let Err(err) = std::fs::DirBuilder::new().recursive(true).create(dir)
    {
        tracing::error!(error = %err, dir = %dir.display(), "the backup directory cannot be created");
    }
    let mut done: Option<Timestamp> = None;
    let mut retry_at: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let slot = schedule.slot_start(Timestamp::now());
        if done.is_some_and(|d| d >= slot) || retry_at.is_some_and(|r| Instant::now() < r) {
            continue;
        }
        match run_in_slot(&app, slot, &to).await {
            Ok(()) => {
                done = Some(slot);
                retry_at = None;
            }
            Err(err) => {
                tracing::error!(error = %err, "scheduled backup failed; retrying in 5 minutes");
                retry_at = Some(Instant::now() + Duration::from_secs(300));
            }
        }
    }
}

/// Backs up unless another instance holds the lock or the slot already has a backup.
async fn run_in_slot(app: &AppState, slot: Timestamp, to: &Location) -> Result<(), BackupError> {
    let Some(lock) = super::store::exclusive(app.store()).await? else {
        return Ok(()); // another instance is backing up
    };
    let mut tx = app.store().system_read().await?;
    let last = super::store::last_success(&mut tx).await?;
    tx.commit().await?;
    if last.is_none_or(|l| l < slot) {
        let (archive, _) = run(app, to, "backup-scheduler").await?;
        tracing::info!(%archive, "scheduled backup written");
    }
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_find_their_slot() {
        assert_eq!(Schedule::parse("daily 02:00"), Ok(Schedule::Daily { hour: 2, minute: 0 }));
        assert!(Schedule::parse("daily 24:00").is_err());
        assert!(Schedule::parse("every 10s").is_err(), "too often");
        assert!(Schedule::parse("weekly").is_err());
        let daily = Schedule::Daily { hour: 2, minute: 30 };
        let day = 86_400_000;
        let at = |h: i64, m: i64| Timestamp::from_millis(20 * day + (h * 60 + m) * 60_000);
        assert_eq!(daily.slot_start(at(3, 0)), at(2, 30));
        assert_eq!(daily.slot_start(at(2, 30)), at(2, 30));
        assert_eq!(daily.slot_start(at(1, 0)).millis(), at(2, 30).millis() - day, "yesterday's");
        let hourly = Schedule::parse("every 1h").expect("hourly");
        assert_eq!(hourly.slot_start(at(5, 59)), at(5, 0));
    }

    #[test]
    fn pruning_keeps_the_newest_archives_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().expect("tempdir");
        for day in 1..=5 {
            let at = Timestamp::from_millis(day * 86_400_000);
            std::fs::write(dir.path().join(archive_name(at)), b"x").expect("write");
        }
        std::fs::write(dir.path().join("notes.txt"), b"keep me").expect("write");
        let removed = prune(dir.path(), 2).expect("prune");
        assert_eq!(removed.len(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["bulwark-19700105T000000Z.age", "bulwark-19700106T000000Z.age", "notes.txt"]
        );
    }
}
