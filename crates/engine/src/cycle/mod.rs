//! One cycle of one channel, in the order it runs:
//!
//! 1. [`plan`]: load the state, read the data store (a [`crate::source::Source`]), detect, map,
//!    plan, guard; a full read creates its new users as it reads them ([`as_read`]);
//! 2. [`users`]: apply the users' operations — units, journal, settle; a target found down
//!    ([`outage`]) stops the cycle here;
//! 3. [`groups`]: the groups, planned again once the users are in;
//! 4. [`finish`]: held operations, unsettled journal entries, the audit trail, the cursor.
//!
//! [`on_demand`] runs the same stages for one user an operator asks for.

mod as_read;
mod driven;
mod finish;
mod full_read;
mod groups;
mod on_demand;
mod outage;
mod plan;
mod planned_as_read;
mod read_groups;
mod users;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use scimbridge_model::{
    AuditEvent, AuditEventType, Channel, ChannelKey, Connection, CycleSummary, DataStore, EpochMs,
    Operation, PlannedOperation,
};

pub use on_demand::{OneUser, sync_one_user};
pub use outage::outage_text;
pub use plan::{ChannelPlan, plan_channel_streamed};
pub use planned_as_read::PlanStream;
pub use read_groups::ReadGroups;

use crate::apply::{Outcome, Owners, ScimClient, ScimClientError};
use crate::audit::AuditContext;
use crate::clock::Clock;
use crate::latency::Histogram;
use crate::source::{SourceError, needs_every_record};
use crate::state::{Store, StoreError};
use as_read::CreatedAsRead;
use outage::OutageWatch;
use plan::plan_creating;

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Target(#[from] ScimClientError),
    /// The cycle was stopped to protect the target (nothing was deprovisioned).
    #[error("cycle stopped: {0}")]
    Refused(String),
    #[error("channel {channel}: data store \"{data_store}\" does not exist")]
    UnknownDataStore { channel: String, data_store: String },
}

/// Told about the cycle as it goes, for progress bars.
pub trait Progress: Send + Sync {
    /// `operations` more operations that write to the target are known. Called once a cycle,
    /// or once for each page of a full read whose new users are created as it reads (the
    /// total is not known up front then): each call adds to what came before, until `end`.
    fn begin(&self, _channel: &ChannelKey, _operations: u64) {}
    fn advance(&self, _operation: &PlannedOperation, _outcome: &Outcome) {}
    fn end(&self) {}
    /// The cycle's provisioning events, a batch at a time, as they are recorded in the state
    /// store while the cycle goes on (for an audit log file): a cycle holds a batch of them, not
    /// one per user, and a cycle killed half way has recorded what it did up to its last batch.
    fn audited(&self, _events: &[AuditEvent]) {}
    /// Asked before each operation is sent: `true` (a service shutting down) sends nothing
    /// more; operations in flight finish and settle, and the next cycle sends the rest.
    fn should_stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    pub channel: ChannelKey,
    pub cycle_id: i64,
    pub summary: CycleSummary,
    pub duration_ms: i64,
    /// Label and reason of each record that failed.
    pub failures: Vec<(String, String)>,
    /// How the data store was read: "content-sync, incremental" and the like.
    pub source: String,
    /// How many provisioning events of each type the cycle recorded, by whether they succeeded
    /// (the events are in the state store, and were handed to [`Progress::audited`]).
    pub event_counts: BTreeMap<(AuditEventType, bool), u64>,
    /// How long the target took to answer the cycle's requests.
    pub request_latency: Histogram,
    /// Operations left undone because the cycle was told to stop, or because the target was
    /// found down; the next cycle does them.
    pub not_sent: u64,
    /// Why the target was found down (no connection, credentials refused, errors to
    /// everything): the cycle stopped there and counted those operations against no record.
    pub outage: Option<String>,
}

/// What every stage of a cycle works with.
struct CycleContext<'a> {
    store: &'a dyn Store,
    connection: &'a Connection,
    channel: &'a Channel,
    key: &'a ChannelKey,
    audit: &'a AuditContext<'a>,
    progress: &'a dyn Progress,
    /// When the cycle started: retry backoffs and held operations are dated with it.
    now_ms: EpochMs,
}

/// The target as one cycle sees it: the client (one connection pool, capabilities discovered
/// once), whether it was found down, and which entry each of its users belongs to.
struct TargetSession<'a> {
    client: ScimClient,
    outage: OutageWatch,
    owners: Owners<'a>,
    /// `max_threads` permits: the users' units in flight at once, across the applies of a cycle
    /// (pages of a full read are applied three at a time, and the target sees `max_threads`).
    sending: tokio::sync::Semaphore,
}

/// How many audit events a cycle holds before it records them.
const AUDIT_BATCH: usize = 1_000;

/// What a cycle has done so far.
#[derive(Default)]
struct Tally {
    summary: CycleSummary,
    failures: Vec<(String, String)>,
    /// Audit events not recorded yet (see [`Tally::record_events`]).
    events: Vec<AuditEvent>,
    /// How many events of each type were recorded, by whether they succeeded.
    event_counts: BTreeMap<(AuditEventType, bool), u64>,
    /// Operations not sent: the cycle was told to stop, or the target was found down.
    not_sent: u64,
}

impl Tally {
    /// Adds what `other` (a page applied on its own) did.
    fn absorb(&mut self, other: Tally) {
        self.summary.add(&other.summary);
        self.failures.extend(other.failures);
        self.events.extend(other.events);
        for (key, count) in other.event_counts {
            *self.event_counts.entry(key).or_default() += count;
        }
        self.not_sent += other.not_sent;
    }

    /// Whether the audit events held make a batch to record.
    fn events_due(&self) -> bool {
        self.events.len() >= AUDIT_BATCH
    }

    /// Records the audit events held, in the state store and with the progress, once they
    /// make a batch (`all`: whatever is held, at the end of the cycle).
    async fn record_events(&mut self, cx: &CycleContext<'_>, all: bool) -> Result<(), StoreError> {
        if self.events.is_empty() || (!all && !self.events_due()) {
            return Ok(());
        }
        cx.store.record_audit_events(&self.events).await?;
        cx.progress.audited(&self.events);
        for event in self.events.drain(..) {
            *self
                .event_counts
                .entry((event.event_type, event.success))
                .or_default() += 1;
        }
        Ok(())
    }
}

/// Runs one cycle and records it in the history. Records that fail are counted and kept with
/// their reason; a failure of the source, the target set-up or the store stops the cycle with an
/// error, and a target found down stops it with `CycleReport::outage`.
pub async fn run_cycle(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<CycleReport, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    let started = clock.now_ms();
    let cycle_id = store.begin_cycle(&key, started).await?;
    let audit = AuditContext {
        channel: &key,
        cycle_id,
        clock,
    };
    let cx = CycleContext {
        store,
        connection,
        channel,
        key: &key,
        audit: &audit,
        progress,
        now_ms: started,
    };
    let mut tally = Tally::default();
    let result = run_planned(&cx, data_store, &mut tally).await;
    let finished = clock.now_ms();
    match result {
        Ok(ran) => Ok(end_cycle(store, cycle_id, key, started, finished, tally, ran).await?),
        Err(error) => {
            progress.end();
            // What the cycle did before it stopped is in the audit trail all the same.
            if let Err(e) = tally.record_events(&cx, true).await {
                tracing::warn!(channel = %key, error = %e, "the audit events of a stopped cycle could not be recorded");
            }
            let message = crate::state::full_message(&error);
            tracing::error!(channel = %key, error = %message, "cycle stopped");
            // What it did before it stopped counts (a full read creates users as it reads).
            store
                .end_cycle(cycle_id, finished, &tally.summary, Some(&message))
                .await?;
            Err(error)
        }
    }
}

/// Records the end of a cycle that ran, and reports it.
async fn end_cycle(
    store: &dyn Store,
    cycle_id: i64,
    key: ChannelKey,
    started: EpochMs,
    finished: EpochMs,
    mut tally: Tally,
    ran: Ran,
) -> Result<CycleReport, StoreError> {
    let Ran {
        source,
        request_latency,
        outage,
    } = ran;
    tally.summary.target_unreachable = outage.is_some();
    let stopped = match &outage {
        Some(reason) => Some(outage_text(reason, tally.not_sent)),
        None => (tally.not_sent > 0).then(|| {
            format!(
                "stopped early: {} operations not done; the next cycle does them",
                tally.not_sent
            )
        }),
    };
    store
        .end_cycle(cycle_id, finished, &tally.summary, stopped.as_deref())
        .await?;
    Ok(CycleReport {
        channel: key,
        cycle_id,
        summary: tally.summary,
        duration_ms: finished.ms_since(started),
        failures: tally.failures,
        source,
        event_counts: tally.event_counts,
        request_latency,
        not_sent: tally.not_sent,
        outage,
    })
}

/// What running a channel's plan gave, besides its tally.
struct Ran {
    /// How the data store was read.
    source: String,
    request_latency: Histogram,
    outage: Option<String>,
}

/// Plans the cycle and runs it: the users, then the groups, then what waits. `tally` says what
/// was done, also when the cycle stops with an error.
async fn run_planned(
    cx: &CycleContext<'_>,
    data_store: &DataStore,
    tally: &mut Tally,
) -> Result<Ran, CycleError> {
    let by_key = !needs_every_record(&cx.channel.source_location);
    let target = TargetSession {
        client: ScimClient::new(
            &cx.connection.target,
            Duration::from_secs(cx.channel.timeout),
        )?,
        outage: OutageWatch::default(),
        // A target user belongs to one entry: every user the channel links, and those it
        // creates. By key, the owners of the users the plan's records do not hold are read from
        // the state store when needed.
        owners: match by_key {
            true => Owners::with_lookup(HashMap::new(), cx.store, cx.key),
            false => Owners::new(HashMap::new()),
        },
        sending: tokio::sync::Semaphore::new(cx.channel.max_threads.max(1) as usize),
    };
    // A full read by key creates its new users as it reads them: the pages it plans are
    // applied beside the read, in this task.
    let creates = CreatedAsRead::new(cx, &target, data_store, tally);
    let read = async {
        let planned = plan_creating(
            cx.store,
            cx.connection,
            cx.channel,
            data_store,
            cx.now_ms,
            Some(&creates),
        )
        .await;
        // Also when the plan failed before its read: the pages stop coming.
        creates.close();
        planned
    };
    let (planned, ()) = tokio::join!(read, creates.send_pages());
    let tally = creates.into_tally();
    let mut planned = planned?;
    target.owners.learn(std::mem::take(&mut planned.links));
    announce(cx, &planned);
    tally.summary.unchanged = planned.plan.unchanged;
    tally.summary.waiting_retry = planned.plan.waiting_retry;
    // The group stage reads the group records again once the users are in: the members the
    // plan read of every group are not held through the users' apply.
    for record in &mut planned.group_records {
        record.members = Vec::new();
    }
    for group in &planned.unstamped_groups {
        let change = crate::state::MemberChange::default();
        cx.store.save_group_change(cx.key, group, change).await?;
    }
    let creates = planned
        .plan
        .operations
        .iter()
        .any(|o| matches!(o.operation, Operation::Create { .. }));
    let bulk = bulk_capabilities(cx, &target, creates).await;
    // New groups ride along: created empty first, then each Bulk request of users also adds
    // its users to their groups by bulkId.
    let rides = match &bulk {
        Some(capabilities) if cx.channel.source_location.group_base_dn.is_some() => {
            groups::prepare_rides(cx, &target, &planned, capabilities.bulk_max_operations).await?
        }
        _ => None,
    };
    let users = (
        planned.plan.operations.as_slice(),
        planned.records.as_slice(),
    );
    let journaled = users::Journaled::AsSent;
    users::apply_users(
        cx,
        &target,
        users,
        journaled,
        bulk.as_ref(),
        rides.as_ref(),
        tally,
    )
    .await?;
    cx.progress.end();
    if let Some(rides) = rides {
        groups::record_rides(cx, &planned, rides, tally).await?;
    }
    // Planned again by the group stage, with the users in.
    planned.plan.group_operations = Vec::new();
    let stopped = tally.not_sent > 0 || target.outage.is_down();
    let held_groups = match &planned.read_groups {
        _ if stopped => Vec::new(),
        Some(read) => read_groups::apply_read_groups(cx, &target, &planned, read, tally).await?,
        None => groups::apply_groups(cx, &target, &planned, tally).await?,
    };
    // Stopped before the group stage, or in it (told to, or the target found down).
    if tally.not_sent > 0 || target.outage.is_down() {
        if !target.outage.is_down() {
            tracing::warn!(channel = %cx.key, not_done = tally.not_sent, "cycle stopped early; the next cycle does the rest");
        }
        finish::stopped(cx, tally).await?;
    } else {
        finish::completed(cx, &planned, &held_groups, tally).await?;
    }
    tally.summary.requests = target.client.requests();
    Ok(Ran {
        source: planned.read.describe(),
        request_latency: target.client.request_latency(),
        outage: target.outage.reason(),
    })
}

/// Says how the data store was read, and what of the plan needs an operator's eye.
fn announce(cx: &CycleContext<'_>, planned: &ChannelPlan) {
    tracing::info!(channel = %cx.key, source = %planned.read.describe(), "data store read");
    if let Some(suspect) = &planned.suspect_read {
        tracing::warn!(channel = %cx.key, %suspect, "the data store read may be incomplete; what it would deprovision, clear or remove is held");
    }
    for entry in &planned.unsettled {
        tracing::warn!(channel = %cx.key, user = %entry.label, operation = %entry.operation, cycle = entry.cycle_id, "an interrupted cycle sent this operation and never settled it; checking the target before sending it again");
    }
}

/// Creates go in SCIM Bulk requests when the target offers Bulk (and users are identified by
/// userName, so that a chunk is looked up with one filter); everything else one by one.
/// `creates`: whether there are creates to send.
async fn bulk_capabilities(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    creates: bool,
) -> Option<crate::apply::Capabilities> {
    if !(cx.connection.target.use_bulk && target.client.identifies_by_user_name() && creates) {
        return None;
    }
    target.client.capabilities().await.ok().filter(|c| c.bulk)
}
