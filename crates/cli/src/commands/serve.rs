//! `scimbridge serve`: the provisioning service. Every active channel of every active connection
//! runs a cycle every synchronization frequency, and at once when its directory's live change
//! feed reports a change. One cycle at a time per channel; channels run in parallel.
//! Configuration applied while it runs takes effect without a restart.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use scimbridge_engine::clock::{Clock, SystemClock};
use scimbridge_engine::run_cycle;
use scimbridge_engine::source::source_of;
use scimbridge_engine::state::{AdminStore, ConfigurationStore, RecordStore};
use scimbridge_model::{Channel, ChannelKey, DataStore};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::auth::Attempts;
use crate::commands::target::shutdown_signal;
use crate::context::DataDir;
use crate::metrics::{Metrics, QueueGauge};
use crate::ops::service::RunNow;
use crate::output::outln;
use crate::progress::{AuditLogged, failure_lines, summary_line};

/// How often the service looks for configuration changes.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the admin API (`/api`), `/metrics` (Prometheus) and `/healthz`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: std::net::SocketAddr,
    /// Seconds between cycles of a channel ("synchronization frequency"); a channel's own
    /// `synchronization_frequency` wins.
    #[arg(long, default_value_t = 60)]
    frequency: u64,
}

struct Worker {
    /// The configuration the worker was started with; another one restarts it.
    config: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    crate::output::keep_running_when_closed();
    let existed = data_dir.exists();
    // A service may start before anything is configured: the console configures it.
    let dir = Arc::new(DataDir::open(data_dir, true).await?);
    if !existed {
        eprintln!(
            "data directory {} created; configure it with `scimbridge apply -f FILE` or in the console",
            data_dir.display()
        );
    }
    if matches!(dir.store.admin_account().await, Ok(None)) {
        eprintln!(
            "warning: no administrator is set: the console and the admin API refuse every sign-on (API tokens excepted) until `scimbridge --data-dir {} admin password` sets one",
            data_dir.display()
        );
    }
    serve(dir, args).await
}

/// Runs a channel worker on a thread of its own, with its own single-threaded runtime: a
/// cycle's future is not `Send` (its operation streams borrow the cycle's state), and a thread
/// per channel lets channels run in parallel on every core.
fn spawn_worker(
    dir: Arc<DataDir>,
    key: ChannelKey,
    frequency: Duration,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
    run_now: mpsc::Receiver<()>,
) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                runtime.block_on(channel_worker(dir, key, frequency, metrics, stop, run_now))
            }
            Err(e) => eprintln!("error: channel {key}: cannot start its worker: {e}"),
        }
    })
}

async fn serve(dir: Arc<DataDir>, args: Args) -> Result<ExitCode> {
    let frequency = Duration::from_secs(args.frequency.max(1));
    let metrics = Metrics::default();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the admin API and /metrics",
                args.listen
            )
        })?;
    outln!(
        "metrics on http://{addr}/metrics, health on /healthz, admin API on http://{addr}/api, console on http://{addr}/console",
        addr = listener.local_addr()?
    );
    let run_now: RunNow = RunNow::default();
    // Failed sign-ons are counted across the API and the console.
    let attempts = Attempts::default();
    let admin = Admin::new(dir.clone(), run_now.clone(), attempts.clone());
    // Everything but the health check needs the administrator or an API token.
    let router = admin
        .protect(metrics.router())
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .merge(admin.router())
        .merge(crate::console::Console::new(dir.clone(), attempts, run_now.clone()).router());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("error: the admin and metrics endpoint stopped: {e}");
        }
    });
    outln!(
        "scimbridge serve: a cycle every {} s per channel, at once on a directory change; Ctrl-C or SIGTERM stops",
        frequency.as_secs()
    );
    let mut workers: HashMap<ChannelKey, Worker> = HashMap::new();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        match wanted_channels(&dir).await {
            Ok(wanted) => {
                // Channels removed, deactivated or changed stop: a running cycle finishes the
                // operations in flight and leaves the rest to the restarted worker.
                let stale: Vec<ChannelKey> = workers
                    .iter()
                    .filter(|(key, worker)| wanted.get(*key) != Some(&worker.config))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in stale {
                    if let Ok(mut senders) = run_now.lock() {
                        senders.remove(&key);
                    }
                    if let Some(worker) = workers.remove(&key) {
                        let _ = worker.stop.send(true);
                        let _ = worker.handle.await;
                        outln!("channel {key}: stopped");
                    }
                }
                for (key, config) in wanted {
                    if workers.contains_key(&key) {
                        continue;
                    }
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let (run_tx, run_rx) = mpsc::channel::<()>(1);
                    if let Ok(mut senders) = run_now.lock() {
                        senders.insert(key.clone(), run_tx);
                    }
                    let handle = spawn_worker(
                        dir.clone(),
                        key.clone(),
                        frequency,
                        metrics.clone(),
                        stop_rx,
                        run_rx,
                    );
                    outln!("channel {key}: started");
                    workers.insert(
                        key,
                        Worker {
                            config,
                            stop: stop_tx,
                            handle,
                        },
                    );
                }
            }
            Err(e) => eprintln!("error: cannot read the configuration: {e:#}"),
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
        }
    }
    outln!(
        "stopping: operations in flight finish and are recorded; the rest is left for the next start (Ctrl-C again to stop at once)"
    );
    for worker in workers.values() {
        let _ = worker.stop.send(true);
    }
    let all_stopped = async {
        for (_, worker) in workers {
            let _ = worker.handle.await;
        }
    };
    tokio::select! {
        _ = all_stopped => {}
        _ = shutdown_signal() => {
            // Whatever was sent and not settled stays in the operation journal: the next
            // cycle checks it in the target before sending it again.
            outln!("stopped at once; unsettled operations are resolved by the next cycle");
            // Not a return: the runtime would wait for the worker threads on its way out.
            std::process::exit(130);
        }
    }
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Every active channel of every active connection, with its configuration (the connection,
/// and its data store) as text, to see when it changes.
async fn wanted_channels(dir: &DataDir) -> Result<HashMap<ChannelKey, String>> {
    let data_stores = dir.store.data_stores().await?;
    let mut wanted = HashMap::new();
    for connection in dir.store.connections().await? {
        if !connection.active {
            continue;
        }
        for channel in connection.channels.iter().filter(|c| c.active) {
            let data_store = data_stores.iter().find(|d| d.name == channel.data_store);
            let config = serde_json::to_string(&(&connection, data_store))?;
            wanted.insert(ChannelKey::new(&connection.name, &channel.name), config);
        }
    }
    Ok(wanted)
}

/// Runs the channel's cycles until told to stop; a stop waits for the running cycle to end.
async fn channel_worker(
    dir: Arc<DataDir>,
    key: ChannelKey,
    default_frequency: Duration,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
    mut run_now: mpsc::Receiver<()>,
) {
    let (changed, mut changes) = mpsc::channel::<()>(1);
    let mut feed: Option<JoinHandle<()>> = None;
    let queue = QueueGauge {
        metrics: metrics.clone(),
        channel: key.to_string(),
        stop: stop.clone(),
    };
    // When the live feed signalled the change the next cycle applies.
    let mut change_signalled: Option<std::time::Instant> = None;
    loop {
        let Ok(Some(connection)) = dir.store.connection(&key.connection).await else {
            break;
        };
        let Some(channel) = connection.channels.iter().find(|c| c.name == key.channel) else {
            break;
        };
        let frequency = channel
            .synchronization_frequency
            .map_or(default_frequency, Duration::from_secs);
        match dir.data_store(&channel.data_store).await {
            Ok(data_store) => {
                if feed.is_none() && source_of(&data_store).may_have_live_feed() {
                    let (opened, open) = tokio::sync::oneshot::channel();
                    feed = Some(tokio::spawn(follow_change_feed(
                        key.to_string(),
                        data_store.clone(),
                        channel.clone(),
                        frequency,
                        changed.clone(),
                        Some(opened),
                    )));
                    // The first cycle reads once the feed follows: a change made meanwhile is
                    // in one or the other. A feed that cannot open does not hold the cycle up.
                    let _ = tokio::time::timeout(FEED_OPENING, open).await;
                }
                let progress = AuditLogged::new(&queue, &dir);
                let cycle = run_cycle(
                    &dir.store,
                    &connection,
                    channel,
                    &data_store,
                    &SystemClock,
                    &progress,
                )
                .await;
                if let Some(failure) = progress.failure() {
                    eprintln!("error: {failure}");
                }
                match cycle {
                    Ok(report) => {
                        metrics.cycle_completed(&report, SystemClock.now_ms().millis());
                        if let Some(signalled) = change_signalled.take() {
                            metrics.change_applied(&key, signalled.elapsed().as_secs_f64());
                        }
                        if let Ok(counts) = dir.store.record_counts(&key).await {
                            metrics.failed_records(&key, counts.failed);
                        }
                        outln!("{}", summary_line(&report));
                        for line in failure_lines(&report, 20) {
                            outln!("{line}");
                        }
                    }
                    // Nothing was deprovisioned; the next cycle tries again.
                    Err(e) => {
                        metrics.cycle_stopped(&key.to_string());
                        eprintln!(
                            "error: channel {key}: {}",
                            scimbridge_engine::state::full_message(&e)
                        );
                    }
                }
            }
            Err(e) => eprintln!("error: channel {key}: {e:#}"),
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(frequency) => {}
            Some(()) = run_now.recv() => {}
            Some(()) = changes.recv() => {
                change_signalled = Some(std::time::Instant::now());
                settle(&mut changes).await;
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    if let Some(feed) = feed {
        feed.abort();
    }
}

/// How long a channel's first cycle waits for its live feed to open.
const FEED_OPENING: Duration = Duration::from_secs(5);

/// How long no change must come before a cycle applies those that came, and how long a burst
/// of changes is waited for at most.
const SETTLE: Duration = Duration::from_millis(50);
const SETTLE_AT_MOST: Duration = Duration::from_millis(500);

/// Changes come in bursts (an import, a group edit, which the memberof overlay turns into an
/// edit of each member): waits until none came for [`SETTLE`], or [`SETTLE_AT_MOST`], so that
/// a burst makes one cycle and a lone change starts one at once (it waited 300 ms before).
async fn settle(changes: &mut mpsc::Receiver<()>) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(SETTLE).await;
        let mut more = false;
        while changes.try_recv().is_ok() {
            more = true;
        }
        if !more || started.elapsed() >= SETTLE_AT_MOST {
            return;
        }
    }
}

/// Follows the directory's live feed (RFC 4533 refreshAndPersist, or Active Directory's
/// `highestCommittedUSN` every `channel.live_poll_interval`) and signals each change on
/// `changed`; reopens a broken feed after a pause. A feed reports what changes once it is
/// open: when it first opens it says so on `opened` (the caller's first cycle then reads what
/// came before), or, without `opened`, signals a change; a reopened feed signals one, for what
/// changed while it was down. Returns when the directory offers no feed: the channel is then
/// polled every `interval`.
pub async fn follow_change_feed(
    name: String,
    data_store: DataStore,
    channel: Channel,
    interval: Duration,
    changed: mpsc::Sender<()>,
    mut opened: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let poll = Duration::from_secs(channel.live_poll_interval);
    loop {
        match source_of(&data_store)
            .live_feed(&channel.source_location, poll)
            .await
        {
            Ok(Some(mut feed)) => {
                outln!("channel {name}: {}", feed.describe());
                match opened.take() {
                    Some(opened) => {
                        let _ = opened.send(());
                    }
                    None => {
                        let _ = changed.try_send(());
                    }
                }
                loop {
                    match feed.next_change().await {
                        // A full buffer means a cycle is already due.
                        Ok(true) => {
                            let _ = changed.try_send(());
                        }
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(channel = %name, error = %e, "change feed broke");
                            break;
                        }
                    }
                }
            }
            Ok(None) => {
                outln!(
                    "channel {name}: the directory offers no live feed; polling every {} s",
                    interval.as_secs()
                );
                return;
            }
            Err(e) => tracing::warn!(channel = %name, error = %e, "cannot open the change feed"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
