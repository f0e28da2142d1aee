//! What a channel is doing: its records, held operations, change detection and cycles, as
//! `scimbridge channels`, the admin API and the console show them.

use scimbridge_engine::state::{Cycle, RecordCounts, Store, StoreError};
use scimbridge_model::{ChangeDetection, ChannelKey, Connection, EpochMs};

use crate::ops::channels::channel_keys;

/// What `channels`, the admin API and the console show of one channel.
pub struct ChannelStatus {
    pub counts: RecordCounts,
    /// Operations the mass-change guard holds.
    pub held: usize,
    /// The change detection of the last read that left a cursor; none yet: full reads.
    pub detection: ChangeDetection,
    pub last_cycle: Option<Cycle>,
    /// The last cycle that ended found the target down (its error says why); a cycle running
    /// now does not hide it.
    pub target_down: Option<String>,
}

/// Cycles looked at for the last one that ended: one may be running, or interrupted.
const RECENT_CYCLES: u32 = 5;

pub async fn channel_status(
    store: &dyn Store,
    key: &ChannelKey,
) -> Result<ChannelStatus, StoreError> {
    let recent = store.cycles(key, RECENT_CYCLES).await?;
    let target_down = recent
        .iter()
        .find(|cycle| cycle.finished_at_ms.is_some() || cycle.error.is_some())
        .filter(|cycle| cycle.summary.target_unreachable)
        .map(|cycle| cycle.error.clone().unwrap_or_default());
    Ok(ChannelStatus {
        counts: store.record_counts(key).await?,
        held: store.held_operations(key).await?.len(),
        detection: store
            .sync_state(key)
            .await?
            .map_or(ChangeDetection::FullScan, |state| state.mechanism),
        last_cycle: recent.into_iter().next(),
        target_down,
    })
}

/// A cycle in one line: when it ended and how, or that it is still running.
pub fn describe_cycle(cycle: Option<&Cycle>) -> String {
    let Some(cycle) = cycle else {
        return "never".to_owned();
    };
    match (&cycle.error, cycle.finished_at_ms) {
        (Some(error), _) => format!("{} stopped: {error}", format_utc(cycle.started_at_ms)),
        (None, None) => format!(
            "{} running, or interrupted",
            format_utc(cycle.started_at_ms)
        ),
        (None, Some(finished)) if cycle.summary.waiting_retry > 0 => format!(
            "{} ok ({} failed, {} waiting to be retried)",
            format_utc(finished),
            cycle.summary.failed,
            cycle.summary.waiting_retry
        ),
        (None, Some(finished)) => format!(
            "{} ok ({} failed)",
            format_utc(finished),
            cycle.summary.failed
        ),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ` (UTC).
pub fn format_utc(time: EpochMs) -> String {
    let secs = time.millis().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = scimbridge_engine::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The last `limit` cycles of every channel of the connection, newest first.
pub async fn recent_cycles(
    store: &dyn Store,
    connection: &Connection,
    limit: u32,
) -> Result<Vec<Cycle>, StoreError> {
    let mut all = Vec::new();
    for key in channel_keys(connection) {
        all.extend(store.cycles(&key, limit).await?);
    }
    all.sort_by_key(|cycle| std::cmp::Reverse(cycle.id));
    all.truncate(limit as usize);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use scimbridge_model::EpochMs;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(
            super::format_utc(EpochMs::from_millis(0)),
            "1970-01-01 00:00:00Z"
        );
        assert_eq!(
            super::format_utc(EpochMs::from_millis(1_795_878_245_000)),
            "2026-11-28 15:04:05Z"
        );
        assert_eq!(
            super::format_utc(EpochMs::from_millis(951_782_400_000)),
            "2000-02-29 00:00:00Z"
        );
    }
}
