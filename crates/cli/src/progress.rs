//! Progress bars for cycles (drawn only on a terminal) and the cycle summary line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use scimbridge_engine::apply::Outcome;
use scimbridge_engine::{CycleReport, Progress};
use scimbridge_model::{AuditEvent, ChannelKey, PlannedOperation};

use crate::context::DataDir;

/// A rate as a person reads it: `1234/s`, `3.5/s` below ten.
fn operations_per_second(rate: f64) -> String {
    if rate >= 10.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    }
}

/// A cycle's progress that also appends the events the cycle records to the data directory's
/// audit log as it goes, a batch at a time. An append that fails is kept, so that the command
/// says so once the cycle is over (the state store holds the events either way).
pub struct AuditLogged<'a> {
    progress: &'a dyn Progress,
    dir: &'a DataDir,
    failed: Mutex<Option<String>>,
}

impl<'a> AuditLogged<'a> {
    pub fn new(progress: &'a dyn Progress, dir: &'a DataDir) -> AuditLogged<'a> {
        AuditLogged {
            progress,
            dir,
            failed: Mutex::new(None),
        }
    }

    /// Why the audit log could not be written, the first time it could not.
    pub fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Progress for AuditLogged<'_> {
    fn begin(&self, channel: &ChannelKey, operations: u64) {
        self.progress.begin(channel, operations);
    }

    fn advance(&self, operation: &PlannedOperation, outcome: &Outcome) {
        self.progress.advance(operation, outcome);
    }

    fn end(&self) {
        self.progress.end();
    }

    fn should_stop(&self) -> bool {
        self.progress.should_stop()
    }

    fn audited(&self, events: &[AuditEvent]) {
        self.progress.audited(events);
        if let Err(e) = self.dir.append_audit(events) {
            let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
            failed.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

pub struct BarProgress {
    bar: ProgressBar,
    /// Between a cycle's first `begin` and its `end`: later calls make the bar longer.
    shown: AtomicBool,
}

impl BarProgress {
    pub fn new() -> BarProgress {
        let bar = ProgressBar::hidden();
        BarProgress {
            bar,
            shown: AtomicBool::new(false),
        }
    }
}

impl Progress for BarProgress {
    fn begin(&self, channel: &ChannelKey, operations: u64) {
        if operations == 0 {
            return;
        }
        if self.shown.swap(true, Ordering::Relaxed) {
            // A full read creating its new users as it reads learns them a page at a time.
            self.bar.inc_length(operations);
            return;
        }
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.bar.set_length(operations);
        self.bar.set_position(0);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:40.cyan/blue}] {pos}/{len} {rate} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        // indicatif's {per_sec} prints four decimals: operations are whole.
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{}", operations_per_second(state.per_sec()));
            },
        )
        .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(channel.to_string());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, operation: &PlannedOperation, outcome: &Outcome) {
        if matches!(outcome, Outcome::Failed(_)) {
            self.bar
                .set_message(format!("failed: {}", operation.label()));
        }
        self.bar.inc(1);
    }

    fn end(&self) {
        self.shown.store(false, Ordering::Relaxed);
        self.bar.finish_and_clear();
    }
}

/// One line per cycle, stable for scripts and tests.
pub fn summary_line(report: &CycleReport) -> String {
    let s = &report.summary;
    let held = if s.held > 0 {
        format!(
            ", held {}: see `scimbridge held {}`",
            s.held, report.channel.connection
        )
    } else {
        String::new()
    };
    let waiting = if s.waiting_retry > 0 {
        format!(
            ", failed earlier and waiting to be retried {}",
            s.waiting_retry
        )
    } else {
        String::new()
    };
    let groups = if s.has_group_changes() {
        format!(
            "; groups: created {}, linked {}, updated {}, deleted {}, failed {}",
            s.groups_created, s.groups_linked, s.groups_updated, s.groups_deleted, s.groups_failed
        )
    } else {
        String::new()
    };
    let stopped = if let Some(reason) = &report.outage {
        format!(
            "; {}",
            scimbridge_engine::cycle::outage_text(reason, report.not_sent)
        )
    } else if report.not_sent > 0 {
        format!(
            "; stopped early: {} operations not done, the next cycle does them",
            report.not_sent
        )
    } else {
        String::new()
    };
    format!(
        "{}: created {}, linked {}, updated {}, disabled {}, deleted {}, failed {} (unchanged {}, skipped {}, blocked {}{waiting}{held}){groups} in {:.2} s ({} requests; source read: {}){stopped}",
        report.channel,
        s.created,
        s.linked,
        s.updated,
        s.disabled,
        s.deleted,
        s.failed,
        s.unchanged,
        s.skipped,
        s.blocked,
        report.duration_ms as f64 / 1000.0,
        s.requests,
        report.source
    )
}

/// The failed records of a cycle, at most `limit` of them.
pub fn failure_lines(report: &CycleReport, limit: usize) -> Vec<String> {
    let mut lines: Vec<String> = report
        .failures
        .iter()
        .take(limit)
        .map(|(label, reason)| format!("  failed {label}: {reason}"))
        .collect();
    if report.failures.len() > limit {
        lines.push(format!(
            "  … and {} more (scimbridge channels shows the counts)",
            report.failures.len() - limit
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_are_rounded_as_a_person_reads_them() {
        assert_eq!(super::operations_per_second(1234.5678), "1235/s");
        assert_eq!(super::operations_per_second(3.4567), "3.5/s");
        assert_eq!(super::operations_per_second(0.0), "0.0/s");
    }
}
