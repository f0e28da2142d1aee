//! A connection's dashboard: its channels, Run Now, the target's state, the cycles as a table
//! and a chart, failed records, the operations the mass-change guard holds (one banner per rule
//! that held them), and one user's history.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scimbridge_engine::state::{
    AuditStore, HeldOperationStore, HistoryStore, RecordStore, full_message,
};
use scimbridge_model::{ChannelKey, RecordStatus};

use super::extract::{Posted, SignedOn, StoredConnection};
use super::{Console, FlashKind, percent, render};
use crate::ops::held;
use crate::ops::service::run_now;
use crate::ops::status::{channel_status, describe_cycle, format_utc};

/// Cycles shown per channel, newest first.
const CYCLES_SHOWN: u32 = 20;

struct ChannelRow {
    name: String,
    users: u64,
    failed: u64,
    held: usize,
    detection: String,
    last: String,
}

/// One cycle, as the table and the chart show it.
struct CycleRow {
    id: i64,
    channel: String,
    when: String,
    /// Seconds, with two decimals; empty while it runs (or was interrupted).
    duration: String,
    created: u64,
    updated: u64,
    removed: u64,
    failed: u64,
    outcome: String,
}

/// The chart: one group of four bars per cycle, oldest on the left, with a value axis.
struct Chart {
    width: u64,
    /// Highest value the axis shows (a round number at or above the largest bar).
    top: u64,
    bars: Vec<ChartCycle>,
}

impl Chart {
    /// The axis' middle value: `2.5` for a top of 5, not `2`.
    fn half(&self) -> String {
        if self.top.is_multiple_of(2) {
            (self.top / 2).to_string()
        } else {
            format!("{:.1}", self.top as f64 / 2.0)
        }
    }
}

struct ChartCycle {
    x: u64,
    label: String,
    tooltip: String,
    /// (class, y, height) of each bar, in the chart's units.
    bars: Vec<(&'static str, u64, u64)>,
}

/// The chart's drawing area: bars stand on `BASE`, at most `HEIGHT` tall.
const CHART_BASE: u64 = 130;
const CHART_HEIGHT: u64 = 110;
const CHART_LEFT: u64 = 44;
const BAR_WIDTH: u64 = 6;
const GROUP_WIDTH: u64 = 4 * BAR_WIDTH + 14;
const CHART_MIN_WIDTH: u64 = 260;

struct FailedRow {
    channel: String,
    user: String,
    reason: String,
    attempts: u32,
}

struct HeldRow {
    channel: String,
    guid: String,
    operation: String,
    label: String,
}

/// Operations held for one reason: the rule says it once, not on every row.
struct HeldRule {
    reason: String,
    count: usize,
}

struct EventRow {
    time: String,
    channel: String,
    cycle: i64,
    event: String,
    success: bool,
    cause: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    csrf: String,
    /// `channel/guid` of each held operation shown, for Approve and Discard.
    shown: String,
    name: String,
    active: bool,
    /// Why the target was found down, when the last cycle of a channel found it so.
    target_down: Option<String>,
    channels: Vec<ChannelRow>,
    cycles: Vec<CycleRow>,
    chart: Option<Chart>,
    failed: Vec<FailedRow>,
    held: Vec<HeldRow>,
    held_rules: Vec<HeldRule>,
    who: String,
    events: Vec<EventRow>,
    message: Option<String>,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize, Default)]
pub(super) struct DashboardQuery {
    who: Option<String>,
}

pub(super) async fn dashboard(
    State(console): State<Console>,
    signed_on: SignedOn,
    StoredConnection(connection): StoredConnection,
    Query(query): Query<DashboardQuery>,
) -> Response {
    let store = &console.dir.store;
    let mut channels = Vec::new();
    let mut cycles = Vec::new();
    let mut failed = Vec::new();
    let mut held = Vec::new();
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let mut target_down = None;
    for channel in &connection.channels {
        let key = ChannelKey::new(&connection.name, &channel.name);
        let status = match channel_status(store, &key).await {
            Ok(status) => status,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, full_message(&e)).into_response(),
        };
        if status.target_down.is_some() {
            target_down.clone_from(&status.target_down);
        }
        let counts = status.counts;
        channels.push(ChannelRow {
            name: channel.name.clone(),
            users: counts.users,
            failed: counts.failed,
            held: status.held,
            detection: status.detection.name().to_owned(),
            last: describe_cycle(status.last_cycle.as_ref()),
        });
        for cycle in store.cycles(&key, CYCLES_SHOWN).await.unwrap_or_default() {
            let s = &cycle.summary;
            cycles.push(CycleRow {
                id: cycle.id,
                channel: channel.name.clone(),
                when: format_utc(cycle.started_at_ms),
                duration: cycle
                    .finished_at_ms
                    .map(|end| {
                        format!("{:.2} s", end.ms_since(cycle.started_at_ms) as f64 / 1000.0)
                    })
                    .unwrap_or_default(),
                created: s.created + s.linked,
                updated: s.updated,
                removed: s.disabled + s.deleted,
                failed: s.failed,
                outcome: match (&cycle.error, cycle.finished_at_ms) {
                    (Some(error), _) => format!("stopped: {error}"),
                    (None, None) => "running, or interrupted".into(),
                    (None, Some(_)) if s.held > 0 => format!("ok, {} held", s.held),
                    (None, Some(_)) => "ok".into(),
                },
            });
        }
        if counts.failed > 0 {
            for record in store.records(&key).await.unwrap_or_default() {
                if record.status == RecordStatus::Failed {
                    failed.push(FailedRow {
                        channel: channel.name.clone(),
                        user: record.user_name.clone().unwrap_or(record.dn.clone()),
                        reason: record.last_error.clone().unwrap_or_default(),
                        attempts: record.attempts,
                    });
                }
            }
        }
        for operation in store.held_operations(&key).await.unwrap_or_default() {
            *rules.entry(operation.reason.clone()).or_default() += 1;
            held.push(HeldRow {
                channel: channel.name.clone(),
                guid: operation.guid.into(),
                operation: operation.operation.to_string(),
                label: operation.label,
            });
        }
    }
    cycles.sort_by_key(|c| std::cmp::Reverse(c.id));
    let chart = chart(&cycles);
    let who = query.who.unwrap_or_default();
    let events = if who.trim().is_empty() {
        Vec::new()
    } else {
        store
            .audit_events_of(who.trim(), 200)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.connection == connection.name)
            .map(|e| EventRow {
                time: format_utc(e.time_ms),
                channel: e.channel,
                cycle: e.cycle_id,
                event: e.event_type.to_string(),
                success: e.success,
                cause: e.cause,
            })
            .collect()
    };
    let shown = held
        .iter()
        .map(|h| format!("{}/{}", h.channel, h.guid))
        .collect::<Vec<_>>()
        .join(",");
    render(&DashboardPage {
        csrf: signed_on.csrf,
        shown,
        name: connection.name,
        active: connection.active,
        target_down,
        channels,
        cycles,
        chart,
        failed,
        held,
        held_rules: rules
            .into_iter()
            .map(|(reason, count)| HeldRule { reason, count })
            .collect(),
        who,
        events,
        message: signed_on.flash.message,
        error: signed_on.flash.error,
    })
}

/// The chart of the cycles (newest first in `cycles`), oldest on the left; `None` without any.
fn chart(cycles: &[CycleRow]) -> Option<Chart> {
    if cycles.is_empty() {
        return None;
    }
    let largest = cycles
        .iter()
        .flat_map(|c| [c.created, c.updated, c.removed, c.failed])
        .max()
        .unwrap_or(0);
    let top = round_up(largest.max(1));
    let bars = cycles
        .iter()
        .rev()
        .enumerate()
        .map(|(i, cycle)| {
            let x = CHART_LEFT + 8 + i as u64 * GROUP_WIDTH;
            let values = [
                ("c-created", cycle.created),
                ("c-updated", cycle.updated),
                ("c-removed", cycle.removed),
                ("c-failed", cycle.failed),
            ];
            ChartCycle {
                x,
                label: cycle.id.to_string(),
                tooltip: format!(
                    "cycle {} of {} at {}: {} created, {} updated, {} disabled or deleted, {} failed",
                    cycle.id,
                    cycle.channel,
                    cycle.when,
                    cycle.created,
                    cycle.updated,
                    cycle.removed,
                    cycle.failed
                ),
                bars: values
                    .iter()
                    .map(|(class, value)| {
                        // A bar that is not zero is at least visible.
                        let height = match value * CHART_HEIGHT / top {
                            0 if *value > 0 => 1,
                            h => h,
                        };
                        (*class, CHART_BASE - height, height)
                    })
                    .collect(),
            }
        })
        .collect::<Vec<_>>();
    Some(Chart {
        // Wide enough for the axis' words with one cycle.
        width: (CHART_LEFT + 16 + bars.len() as u64 * GROUP_WIDTH).max(CHART_MIN_WIDTH),
        top,
        bars,
    })
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value`: an axis a person reads.
fn round_up(value: u64) -> u64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if step * factor >= value {
                return step * factor;
            }
        }
        step *= 10;
    }
}

impl DashboardPage {
    /// Where an axis label of `fraction` (0, ½, 1) of the top stands.
    fn axis_y(&self, half_steps: u64) -> u64 {
        CHART_BASE - CHART_HEIGHT * half_steps / 2
    }

    fn chart_base(&self) -> u64 {
        CHART_BASE
    }

    fn chart_left(&self) -> u64 {
        CHART_LEFT
    }

    fn bar_width(&self) -> u64 {
        BAR_WIDTH
    }
}

/// Run Now: a cycle of each running channel of the connection starts at once.
pub(super) async fn run(
    State(console): State<Console>,
    StoredConnection(connection): StoredConnection,
    posted: Posted,
) -> Response {
    let (kind, text) = match run_now(&console.run_now, &connection) {
        Ok(started) => {
            let mut text = format!("A cycle of {} starts now.", started.started.join(", "));
            if !started.not_running.is_empty() {
                text.push_str(&format!(
                    " Not running (inactive): {}.",
                    started.not_running.join(", ")
                ));
            }
            (FlashKind::Message, text)
        }
        Err(refused) => (FlashKind::Error, format!("Nothing was started: {refused}.")),
    };
    console.redirect_with(
        &posted.signed_on.id,
        &format!("/console/connections/{}", percent(&connection.name)),
        kind,
        text,
    )
}

pub(super) async fn decide_held(
    State(console): State<Console>,
    StoredConnection(connection): StoredConnection,
    Posted { form, signed_on }: Posted,
) -> Response {
    let posted_id = signed_on.id;
    let approve = form.get("decision").is_some_and(|d| d == "approve");
    // Only the operations the page showed: a cycle may have held others since.
    let shown: Vec<(String, String)> = form
        .get("shown")
        .map(|list| {
            list.split(',')
                .filter_map(|item| item.split_once('/'))
                .map(|(channel, guid)| (channel.to_owned(), guid.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let was_shown =
        |channel: &str, guid: &str| shown.iter().any(|(c, g)| c == channel && g == guid);
    let count =
        match held::decide_reviewed(&console.dir.store, &connection, was_shown, approve).await {
            Ok(count) => count,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, full_message(&e)).into_response(),
        };
    let message = if approve {
        format!("{count} held operations approved: the next cycle applies them.")
    } else {
        format!("{count} held operations discarded.")
    };
    console.redirect_with(
        &posted_id,
        &format!("/console/connections/{}", percent(&connection.name)),
        FlashKind::Message,
        message,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(id: i64, created: u64, failed: u64) -> CycleRow {
        CycleRow {
            id,
            channel: "staff".into(),
            when: "2026-12-04 10:00:00Z".into(),
            duration: "0.10 s".into(),
            created,
            updated: 0,
            removed: 0,
            failed,
            outcome: "ok".into(),
        }
    }

    #[test]
    fn axes_end_on_a_round_number() {
        let tops: Vec<u64> = [1, 3, 7, 10, 11, 999, 1001].map(round_up).to_vec();
        assert_eq!(tops, [1, 5, 10, 10, 20, 1000, 2000]);
    }

    #[test]
    fn the_chart_draws_oldest_first_with_bars_to_scale_and_small_ones_visible() {
        // Newest first, as the table lists them.
        let chart = chart(&[cycle(2, 1, 0), cycle(1, 100, 0)]).unwrap();
        assert_eq!(chart.top, 100);
        assert_eq!(chart.half(), "50");
        assert_eq!(super::chart(&[cycle(1, 3, 0)]).unwrap().half(), "2.5");
        let labels: Vec<&str> = chart.bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["1", "2"]);
        let (_, y, height) = chart.bars[0].bars[0];
        assert_eq!((y, height), (CHART_BASE - CHART_HEIGHT, CHART_HEIGHT));
        // 1 of 100 is drawn one unit tall, not lost; zero stays zero.
        assert_eq!(chart.bars[1].bars[0].2, 1);
        assert_eq!(chart.bars[1].bars[3].2, 0);
        assert!(chart.bars[1].tooltip.contains("cycle 2 of staff"));
        assert!(super::chart(&[]).is_none());
    }
}
