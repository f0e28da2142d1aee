//! The service's Prometheus metrics and health endpoint (`scimbridge serve --listen`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use scimbridge_engine::CycleReport;

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
        *state
            .cycles
            .entry((channel.clone(), "completed"))
            .or_default() += 1;
        for event in &report.events {
            *state
                .operations
                .entry((channel.clone(), event.event_type.clone(), event.success))
                .or_default() += 1;
        }
        state
            .last_success
            .insert(channel.clone(), finished_ms as f64 / 1000.0);
        state
            .last_duration
            .insert(channel.clone(), report.duration_ms as f64 / 1000.0);
        state.held.insert(channel.clone(), report.summary.held);
        *state.requests.entry(channel).or_default() += report.summary.requests;
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
            "# HELP scimbridge_cycles_total Cycles by channel and outcome (completed, or stopped by an error).\n# TYPE scimbridge_cycles_total counter"
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
        let counts: [(&str, &str, &str, &BTreeMap<String, u64>); 2] = [
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
        ];
        for (name, help, kind, values) in counts {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (channel, value) in values {
                let _ = writeln!(out, "{name}{{channel=\"{}\"}} {value}", label(channel));
            }
        }
        out
    }

    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let body = metrics.render();
                    async move {
                        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
                            .into_response()
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }))
    }
}
