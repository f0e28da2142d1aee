//! The service's Prometheus metrics and health endpoint (`scimbridge serve --listen`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use scimbridge_engine::apply::Outcome;
use scimbridge_engine::latency::Histogram;
use scimbridge_engine::{CycleReport, Progress};
use scimbridge_model::{ChannelKey, PlannedOperation};

#[derive(Debug, Default)]
struct State {
    /// (channel, outcome) → cycles.
    cycles: BTreeMap<(String, &'static str), u64>,
    /// (channel, event type, success) → operations.
    operations: BTreeMap<(String, String, bool), u64>,
    /// channel → seconds since the epoch of the last cycle that completed.
    last_success: BTreeMap<String, f64>,
    /// channel → duration of the last completed cycle, in seconds.
    last_duration: BTreeMap<String, f64>,
    /// channel → operations the mass-change guard holds.
    held: BTreeMap<String, u64>,
    /// channel → requests sent to the target, in total.
    requests: BTreeMap<String, u64>,
    /// channel → records that failed (retried later), after the last cycle.
    failed_records: BTreeMap<String, u64>,
    /// channel → operations of the running cycle not yet settled (the queue).
    pending: BTreeMap<String, u64>,
    /// channel → 1 while its last cycle found the target down, else 0.
    target_unreachable: BTreeMap<String, u64>,
    /// channel → how long the target took to answer each request.
    request_seconds: BTreeMap<String, Histogram>,
    /// channel → cycle durations.
    cycle_seconds: BTreeMap<String, Histogram>,
    /// channel → from a live feed's change signal to the end of the cycle that applied it.
    change_seconds: BTreeMap<String, Histogram>,
}

#[derive(Debug, Clone, Default)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
}

impl Metrics {
    pub fn cycle_completed(&self, report: &CycleReport, finished_ms: i64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let channel = report.channel.to_string();
        let outcome = if report.outage.is_some() {
            "target_unreachable"
        } else {
            "completed"
        };
        *state.cycles.entry((channel.clone(), outcome)).or_default() += 1;
        // A cycle that sent nothing learnt nothing of the target.
        if report.outage.is_some() || report.summary.requests > 0 {
            state
                .target_unreachable
                .insert(channel.clone(), u64::from(report.outage.is_some()));
        }
        for ((event_type, success), count) in &report.event_counts {
            *state
                .operations
                .entry((channel.clone(), event_type.to_string(), *success))
                .or_default() += count;
        }
        if report.outage.is_none() {
            state
                .last_success
                .insert(channel.clone(), finished_ms as f64 / 1000.0);
        }
        state
            .last_duration
            .insert(channel.clone(), report.duration_ms as f64 / 1000.0);
        state.held.insert(channel.clone(), report.summary.held);
        state
            .request_seconds
            .entry(channel.clone())
            .or_default()
            .merge(&report.request_latency);
        state
            .cycle_seconds
            .entry(channel.clone())
            .or_default()
            .observe(report.duration_ms as f64 / 1000.0);
        *state.requests.entry(channel).or_default() += report.summary.requests;
    }

    /// Records left failed (waiting for their retry included) after a cycle.
    pub fn failed_records(&self, channel: &ChannelKey, count: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.failed_records.insert(channel.to_string(), count);
        }
    }

    /// A change the live feed signalled reached the target `seconds` after the signal.
    pub fn change_applied(&self, channel: &ChannelKey, seconds: f64) {
        if let Ok(mut state) = self.state.lock() {
            state
                .change_seconds
                .entry(channel.to_string())
                .or_default()
                .observe(seconds);
        }
    }

    fn set_pending(&self, channel: &str, update: impl FnOnce(&mut u64)) {
        if let Ok(mut state) = self.state.lock() {
            update(state.pending.entry(channel.to_owned()).or_default());
        }
    }

    pub fn cycle_stopped(&self, channel: &str) {
        if let Ok(mut state) = self.state.lock() {
            *state
                .cycles
                .entry((channel.to_owned(), "stopped"))
                .or_default() += 1;
        }
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let Ok(state) = self.state.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let label = |value: &str| value.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(
            out,
            "# HELP scimbridge_cycles_total Cycles by channel and outcome (completed, target_unreachable, or stopped by an error).\n# TYPE scimbridge_cycles_total counter"
        );
        for ((channel, outcome), count) in &state.cycles {
            let _ = writeln!(
                out,
                "scimbridge_cycles_total{{channel=\"{}\",outcome=\"{outcome}\"}} {count}",
                label(channel)
            );
        }
        let _ = writeln!(
            out,
            "# HELP scimbridge_operations_total Provisioning operations by channel, type and result.\n# TYPE scimbridge_operations_total counter"
        );
        for ((channel, kind, success), count) in &state.operations {
            let _ = writeln!(
                out,
                "scimbridge_operations_total{{channel=\"{}\",type=\"{}\",success=\"{success}\"}} {count}",
                label(channel),
                label(kind)
            );
        }
        let gauges: [(&str, &str, &BTreeMap<String, f64>); 2] = [
            (
                "scimbridge_last_successful_cycle_seconds",
                "When the channel's last cycle completed (seconds since the epoch).",
                &state.last_success,
            ),
            (
                "scimbridge_cycle_duration_seconds",
                "Duration of the channel's last completed cycle.",
                &state.last_duration,
            ),
        ];
        for (name, help, values) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (channel, value) in values {
                let _ = writeln!(out, "{name}{{channel=\"{}\"}} {value}", label(channel));
            }
        }
        let counts: [(&str, &str, &str, &BTreeMap<String, u64>); 5] = [
            (
                "scimbridge_target_unreachable",
                "1 while the channel's last cycle that sent a request found the target down (no connection, credentials refused, errors to everything), else 0.",
                "gauge",
                &state.target_unreachable,
            ),
            (
                "scimbridge_held_operations",
                "Operations the mass-change guard holds.",
                "gauge",
                &state.held,
            ),
            (
                "scimbridge_target_requests_total",
                "Requests sent to the target.",
                "counter",
                &state.requests,
            ),
            (
                "scimbridge_failed_records",
                "Records whose last attempt failed, retried later.",
                "gauge",
                &state.failed_records,
            ),
            (
                "scimbridge_pending_operations",
                "Operations of the running cycle not yet settled.",
                "gauge",
                &state.pending,
            ),
        ];
        for (name, help, kind, values) in counts {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (channel, value) in values {
                let _ = writeln!(out, "{name}{{channel=\"{}\"}} {value}", label(channel));
            }
        }
        let histograms: [(&str, &str, &BTreeMap<String, Histogram>); 3] = [
            (
                "scimbridge_target_request_seconds",
                "How long the target took to answer a request.",
                &state.request_seconds,
            ),
            (
                "scimbridge_cycle_seconds",
                "Duration of completed cycles.",
                &state.cycle_seconds,
            ),
            (
                "scimbridge_change_to_target_seconds",
                "From a change signalled by the directory's live feed to the end of the cycle that applied it.",
                &state.change_seconds,
            ),
        ];
        for (name, help, values) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (channel, histogram) in values {
                let channel = label(channel);
                for (bound, count) in histogram.cumulative() {
                    let le = if bound.is_infinite() {
                        "+Inf".to_owned()
                    } else {
                        bound.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{channel=\"{channel}\",le=\"{le}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "{name}_sum{{channel=\"{channel}\"}} {}",
                    histogram.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "{name}_count{{channel=\"{channel}\"}} {}",
                    histogram.count()
                );
            }
        }
        out
    }

    /// `/metrics`; the service puts it behind the admin API's authentication.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let body = metrics.render();
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
                }
            }),
        )
    }
}

/// Keeps one channel's `scimbridge_pending_operations` up to date while its cycle runs.
/// Also tells the cycle to stop sending when the service is stopping.
pub struct QueueGauge {
    pub metrics: Metrics,
    pub channel: String,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl Progress for QueueGauge {
    fn begin(&self, _channel: &ChannelKey, operations: u64) {
        // Added to: a full read creating its new users as it reads learns them page by page.
        self.metrics
            .set_pending(&self.channel, |pending| *pending += operations);
    }

    fn advance(&self, _operation: &PlannedOperation, _outcome: &Outcome) {
        self.metrics.set_pending(&self.channel, |pending| {
            *pending = pending.saturating_sub(1)
        });
    }

    fn end(&self) {
        self.metrics
            .set_pending(&self.channel, |pending| *pending = 0);
    }

    fn should_stop(&self) -> bool {
        *self.stop.borrow()
    }
}
