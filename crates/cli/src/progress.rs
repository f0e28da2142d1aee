//! Progress bars for cycles (drawn only on a terminal) and the cycle summary line.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use scimbridge_engine::apply::Outcome;
use scimbridge_engine::{CycleReport, Progress};
use scimbridge_model::{ChannelKey, PlannedOperation};

/// A rate as a person reads it: `1234/s`, `3.5/s` below ten.
fn operations_per_second(rate: f64) -> String {
    if rate >= 10.0 {
        format!("{rate:.0}/s")
    } else {
        format!("{rate:.1}/s")
    }
}

pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    pub fn new() -> BarProgress {
        let bar = ProgressBar::hidden();
        BarProgress { bar }
    }
}

impl Progress for BarProgress {
    fn begin(&self, channel: &ChannelKey, operations: u64) {
        if operations == 0 {
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
