//! Polite and safe under faults: 429 and 503 answers waited for, 5xx and dropped connections
//! retried, lost answers never turned into duplicates nor into 412s, refused look-up filters
//! replaced by listing, failures recorded and retried by the next cycle. The faults come from a
//! proxy in front of the bundled target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use scimbridge_engine::state::JournalStore;
use scimbridge_model::{ChannelKey, EpochMs, JournalEntry};
use scimbridge_store::{Sealed, SecretKey, SqliteStore};
use scimbridge_testkit::faults::FaultProxy;
use serde_json::{Value, json};

fn uid(i: usize) -> String {
    format!("user{i:02}")
}

/// `user{i:02}`, family name `Number {i}`.
fn person(i: usize) -> Entry {
    Entry::person(&uid(i))
        .with("sn", &format!("Number {i}"))
        .guid(i)
}

fn directory(people: usize) -> String {
    ldif(std::iter::once(Entry::ou("people")).chain((0..people).map(person)))
}

struct Setup {
    ws: Workspace,
    target: TargetProcess,
}

fn setup(people: usize) -> Setup {
    let ws = Workspace::new();
    let target = ws.target("t0ken");
    ws.write_ldif(&directory(people));
    Setup { ws, target }
}

impl Setup {
    /// The people into `url` (the target, or a proxy in front of it), one request per user,
    /// two at a time, ten seconds for each answer.
    fn config(&self, url: &str) -> Config {
        Config::ldif(&self.ws.ldif, url, "t0ken")
            .target("use_bulk", false)
            .channel_setting("timeout", 10)
            .channel_setting("max_threads", 2)
            .map("familyName", "sn")
    }

    /// A proxy in front of the target, answering by these rules.
    fn proxy(&self, rules: Value) -> FaultProxy {
        FaultProxy::start(&self.target.upstream(), &rules)
    }

    /// Applied without checking the target: a faulty one would fail the check.
    fn apply(&self, config: &Config) {
        self.ws.apply_unchecked(config);
    }

    fn sync(&self) -> (Option<i32>, String) {
        self.ws.try_sync()
    }

    /// Opens the state store as the binary does, to set up what a crash leaves behind.
    fn with_store<T>(&self, work: impl AsyncFnOnce(&Sealed<SqliteStore>) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let key = SecretKey::load_or_create(&self.ws.data.join("secret.key")).unwrap();
            let backend = SqliteStore::open(&self.ws.data.join("state.db"))
                .await
                .unwrap();
            work(&Sealed::new(backend, key)).await
        })
    }

    /// What a cycle killed after sending these operations and before settling them leaves in
    /// the operation journal.
    fn interrupted(&self, operations: &[(usize, &str)]) {
        let entries: Vec<JournalEntry> = operations
            .iter()
            .map(|(i, operation)| JournalEntry {
                guid: guid(*i).into(),
                dn: user_dn(&uid(*i)),
                label: uid(*i),
                operation: operation.parse().unwrap(),
                cycle_id: 41,
                sent_at_ms: EpochMs::from_millis(1_700_000_000_000),
            })
            .collect();
        self.with_store(async |store| {
            store
                .journal_operations(&ChannelKey::new("app", "staff"), &entries)
                .await
                .unwrap()
        });
    }

    fn unsettled(&self) -> usize {
        self.with_store(async |store| {
            store
                .unsettled_operations(&ChannelKey::new("app", "staff"))
                .await
                .unwrap()
                .len()
        })
    }

    /// Asserts the target holds exactly these users, each once.
    fn assert_users(&self, count: usize) {
        let listed = self.target.client().user_names();
        let names: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(listed.len(), count, "{names:?}");
        assert_eq!(names.len(), count, "a user exists twice");
    }
}

#[test]
fn rate_limits_and_unavailable_answers_are_waited_for_and_5xx_retried() {
    let setup = setup(12);
    let proxy = setup.proxy(json!([
        {"method": "POST", "path": "/scim/v2/Users", "skip": 2, "count": 2,
         "fault": "status", "status": 429, "retry_after": "1"},
        {"method": "GET", "path": "/scim/v2/Users", "skip": 4, "count": 1,
         "fault": "status", "status": 503, "retry_after": "0"},
        {"method": "GET", "path": "/scim/v2/Users", "skip": 7, "count": 2,
         "fault": "status", "status": 502},
    ]));
    setup.apply(&setup.config(&proxy.url("/scim/v2")));
    let out = setup.ws.sync_expecting(
        0,
        &["created 12, linked 0, updated 0, disabled 0, deleted 0, failed 0"],
    );
    // The two 429s said to wait a second: the cycle cannot have been quicker than that.
    let seconds: f64 = out
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds >= 1.0, "{out}");
    setup.assert_users(12);
    let stats = proxy.stats();
    assert_eq!(stats["faults"], 5, "{stats:?}");
    // Every refused create was sent again once the wait was over, and only then.
    assert_eq!(stats["POST /scim/v2/Users"], 12 + 2, "{stats:?}");
    assert_eq!(stats["GET /scim/v2/Users"], 12 + 3, "{stats:?}");
}

#[test]
fn lost_answers_and_dropped_connections_never_duplicate_a_user() {
    let setup = setup(10);
    let proxy = setup.proxy(json!([
        // The target creates these two users, but answers after the client gave up.
        {"method": "POST", "path": "/scim/v2/Users", "skip": 2, "count": 2,
         "fault": "delay_after", "seconds": 2.5},
        // This create never reaches the target.
        {"method": "POST", "path": "/scim/v2/Users", "skip": 6, "count": 1, "fault": "drop"},
    ]));
    setup.apply(
        &setup
            .config(&proxy.url("/scim/v2"))
            .channel_setting("timeout", 1),
    );
    setup.ws.sync_expecting(0, &["created 10, linked 0"]);
    setup.assert_users(10);
    let stats = proxy.stats();
    // 10 creates, plus one more for the dropped one; none for the two whose answer was lost,
    // because the look-up after the timeout found them.
    assert_eq!(stats["POST /scim/v2/Users"], 11, "{stats:?}");

    // The next cycle has nothing to do.
    setup
        .ws
        .sync_expecting(0, &["created 0, linked 0, updated 0"]);
}

/// Every create of a user answered 500.
fn failing_creates(setup: &Setup) -> FaultProxy {
    setup.proxy(
        json!([{"method": "POST", "path": "/scim/v2/Users", "count": -1,
                        "fault": "status", "status": 500}]),
    )
}

/// A target that answers a create with a user it has (an upsert, matching on something the
/// look-up did not ask about) gives away another entry's user: the create fails naming that
/// entry, and nothing is linked to the user. The state store is asked about such users a batch
/// at a time, before the creates' records are saved.
#[test]
fn a_create_answered_with_another_entry_s_user_is_not_linked() {
    let setup = setup(3);
    setup.apply(&setup.config(&setup.target.url));
    setup.ws.sync_expecting(0, &["created 3,"]);
    let client = setup.target.client();
    let user00 = client.id_of("user00");

    let proxy = setup.proxy(
        json!([{"method": "POST", "path": "/scim/v2/Users", "count": -1,
                                    "fault": "existing", "user_name": "user00"}]),
    );
    setup.apply(&setup.config(&proxy.url("/scim/v2")));
    setup.ws.write_ldif(&directory(5));
    let out = setup
        .ws
        .sync_expecting(3, &["created 0, linked 0,", "failed 2"]);
    for newcomer in ["user03", "user04"] {
        let refused = format!(
            "failed {newcomer}: the target user {newcomer} (id {user00}) belongs to another \
             entry of this channel, uid=user00,"
        );
        assert!(out.contains(&refused), "no {refused:?} in:\n{out}");
    }
    setup.assert_users(3);

    // The target behaves: the newcomers get users of their own, and user00 keeps its.
    drop(proxy);
    setup.apply(&setup.config(&setup.target.url));
    setup
        .ws
        .sync_expecting(0, &["created 2, linked 0,", "failed 0"]);
    setup.assert_users(5);
    assert_eq!(client.id_of("user00"), user00);
    assert_ne!(client.id_of("user03"), user00);
}

#[test]
fn a_target_that_keeps_failing_fails_the_records_which_the_next_cycle_retries() {
    let setup = setup(4);
    let proxy = failing_creates(&setup);
    let retry_once = |url: &str| setup.config(url).target("max_retries", 1);
    setup.apply(&retry_once(&proxy.url("/scim/v2")));
    let out = setup.ws.sync_expecting(
        3,
        &["created 0, linked 0, updated 0, disabled 0, deleted 0, failed 4"],
    );
    assert_has(
        &out,
        &[
            "failed user00: POST http://127.0.0.1:",
            "HTTP 500: injected fault",
        ],
    );
    setup.assert_users(0);
    // Each create was tried twice (max_retries = 1), each time after a look-up. Failures that
    // could be the target's (a 500) made the cycle ask the target whether it is up: twice (after
    // three in a row, and for the last one), and it answered, so the records failed.
    let stats = proxy.stats();
    assert_eq!(stats["POST /scim/v2/Users"], 8, "{stats:?}");
    assert_eq!(stats["GET /scim/v2/Users"], 8 + 2, "{stats:?}");

    // The target recovers: the next cycle creates them.
    drop(proxy);
    setup.apply(&retry_once(&setup.target.url));
    setup.ws.sync_expecting(
        0,
        &["created 4, linked 0, updated 0, disabled 0, deleted 0, failed 0"],
    );
    setup.assert_users(4);
}

#[test]
fn the_bundled_target_s_own_faults_are_ridden_out() {
    // The same faults, injected by `target serve` itself: 429 with Retry-After on every 4th
    // request, a dropped connection on every 7th.
    let ws = Workspace::new();
    let target = TargetProcess::start_with(
        &ws.path("target.db"),
        "t0ken",
        &[
            "--fault-error-every",
            "4",
            "--fault-status",
            "429",
            "--fault-retry-after",
            "1",
            "--fault-drop-every",
            "7",
        ],
    );
    let setup = Setup { ws, target };
    setup.ws.write_ldif(&directory(8));
    setup.apply(&setup.config(&setup.target.url).target("max_retries", 5));
    setup.ws.sync_expecting(
        0,
        &["created 8, linked 0, updated 0, disabled 0, deleted 0, failed 0"],
    );
}

#[test]
fn a_record_that_keeps_failing_waits_longer_between_attempts() {
    let setup = setup(3);
    let proxy = failing_creates(&setup);
    let no_retry = |url: &str| setup.config(url).target("max_retries", 0);
    setup.apply(&no_retry(&proxy.url("/scim/v2")));
    // The first failure is retried by the very next cycle; the second starts the backoff.
    for _ in 0..2 {
        setup.ws.sync_expecting(3, &["failed 3 "]);
    }
    let posts = proxy.stats()["POST /scim/v2/Users"];
    assert_eq!(posts, 6);

    // Within the backoff the records wait: no request for them, and the cycle says so (and
    // still exits 3: users are missing from the target).
    setup.ws.sync_expecting(3, &["failed 0 (unchanged 0, skipped 0, blocked 0, failed earlier and waiting to be retried 3)"]);
    assert_eq!(proxy.stats()["POST /scim/v2/Users"], posts);
    let plan = setup.ws.run(&["plan", "app"]);
    assert!(plan.contains("failed, waiting to be retried: 3"), "{plan}");

    // An entry edited in the directory is tried again at once; so is a user asked for by name.
    rename(&setup.ws, 1, "Numéro 1");
    drop(proxy);
    setup.apply(&no_retry(&setup.target.url));
    setup.ws.sync_expecting(3, &["created 1, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 0, skipped 0, blocked 0, failed earlier and waiting to be retried 2)"]);
    setup.ws.run(&["sync", "app", "--user", "user02"]);
    let names: BTreeSet<String> = setup.target.client().user_names().into_iter().collect();
    assert_eq!(names, BTreeSet::from(["user01".into(), "user02".into()]));
    // user00 still waits: `channels` counts it as failed and says the last cycle left some.
    let (channels, row) = setup.ws.channels_row("app");
    assert_eq!(row[4], "1", "{channels}");
    assert!(channels.contains("waiting to be retried)"), "{channels}");
}

#[test]
fn a_create_an_interrupted_cycle_sent_is_recognised_as_ours() {
    let setup = setup(3);
    setup.apply(&setup.config(&setup.target.url));
    // The killed cycle's create of user00 reached the target; user01 was made by hand.
    let client = setup.target.client();
    for i in [0, 1] {
        client.create_user(
            &uid(i),
            json!({"name": {"familyName": format!("Number {i}")}}),
        );
    }
    setup.interrupted(&[(0, "create")]);
    let plan = setup.ws.run(&["plan", "app"]);
    assert!(
        plan.contains("create user00: new in the source location (the create sent in cycle 41 was never settled)"),
        "{plan}"
    );

    let out = setup.ws.sync_expecting(
        0,
        &["created 2, linked 1, updated 0, disabled 0, deleted 0, failed 0"],
    );
    assert!(out.contains("never settled"), "the warning names it: {out}");
    setup.assert_users(3);
    assert_eq!(setup.unsettled(), 0);
    let history = setup.ws.run(&["history", "user00"]);
    assert_has(&history, &["user-create", "was never settled"]);
}

#[test]
fn an_update_an_interrupted_cycle_may_have_sent_is_written_again() {
    let setup = setup(2);
    setup.apply(&setup.config(&setup.target.url));
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    // The killed cycle's update reached the target (the entry has been edited back since): the
    // target now differs from what the state store says it holds.
    let client = setup.target.client();
    client.patch_user(
        &client.id_of("user00"),
        json!([{"op": "replace", "path": "name.familyName", "value": "Half-written"}]),
    );
    setup.interrupted(&[(0, "update")]);

    setup.ws.sync_expecting(
        0,
        &["created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"],
    );
    let user = client.user_by_name("user00").unwrap();
    assert_eq!(user["name"]["familyName"], "Number 0");
    assert_eq!(setup.unsettled(), 0);
    // Settled: the next cycle has nothing to do.
    let (_, out) = setup.sync();
    assert!(out.contains("created 0, linked 0, updated 0"), "{out}");
}

#[test]
fn an_interrupted_operation_for_a_user_no_longer_in_scope_is_reported() {
    let setup = setup(2);
    setup.apply(&setup.config(&setup.target.url));
    // A create was sent for user07, who has left the directory since.
    setup.interrupted(&[(7, "create")]);
    setup
        .ws
        .sync_expecting(0, &["was not sent again; check this user in the target"]);
    assert_eq!(setup.unsettled(), 0);
    let history = setup.ws.run(&["history", "user07"]);
    assert!(history.contains("user-unsettled"), "{history}");
}

/// `serve` started on a first cycle of `people` into a target answering each request after
/// `latency_ms`, and stopped once the target holds `started` users; the setup, what the
/// service printed, and how many users the target holds after the stop.
fn serve_stopped_during_a_first_cycle(
    people: usize,
    latency_ms: u32,
    use_bulk: bool,
    started: usize,
) -> (Setup, String, usize) {
    let ws = Workspace::new();
    let target = TargetProcess::start_with(
        &ws.path("target.db"),
        "t0ken",
        &["--fault-latency-after-ms", &latency_ms.to_string()],
    );
    let setup = Setup { ws, target };
    setup.ws.write_ldif(&directory(people));
    setup.apply(&setup.config(&setup.target.url).target("use_bulk", use_bulk));
    let client = setup.target.client();

    let service = Service::start(&setup.ws.data);
    wait_until(Duration::from_secs(30), "the cycle did not start", || {
        client.users().len() >= started
    });
    let (status, printed) = service.process.stop();
    let printed = printed.join("\n");
    assert!(status.success(), "{status:?}\n{printed}");
    let done = client.users().len();
    (setup, printed, done)
}

/// The next cycle creates the `people - done` users the stopped one did not, links nothing,
/// duplicates nothing.
fn the_next_cycle_creates_the_rest(setup: &Setup, people: usize, done: usize) {
    let out = setup.ws.sync();
    assert!(
        out.contains(&format!("created {}, linked 0,", people - done)),
        "{done} were in the target: {out}"
    );
    setup.assert_users(people);
}

#[test]
fn serve_stopped_mid_cycle_finishes_what_is_in_flight_and_leaves_the_rest() {
    const PEOPLE: usize = 60;
    // A slow target: each answer takes 50 ms, so the cycle lasts seconds.
    let (setup, printed, done) = serve_stopped_during_a_first_cycle(PEOPLE, 50, false, 5);
    assert!(
        printed.contains("operations not done, the next cycle does them"),
        "{printed}"
    );
    assert!(done < PEOPLE, "the stop came too late to prove anything");
    // What was journaled and not sent had its entry closed: nothing is left to check.
    assert_eq!(setup.unsettled(), 0);
    // Everything in flight settled before the exit.
    the_next_cycle_creates_the_rest(&setup, PEOPLE, done);
}

/// A first cycle with Bulk stopped while pages of new users wait to be sent (a page is 1,000
/// users, each journaled when the read queues it): what was not sent has its journal entry
/// closed, and the next cycle creates the rest once each.
#[test]
fn serve_stopped_while_pages_wait_leaves_no_journal_entry_open() {
    const PEOPLE: usize = 3_500;
    // Each answer takes 100 ms: 70 requests two at a time last seconds.
    let (setup, _, done) = serve_stopped_during_a_first_cycle(PEOPLE, 100, true, 1);
    assert!(
        done < PEOPLE - 1_000,
        "the stop came too late to prove anything"
    );
    assert_eq!(setup.unsettled(), 0);
    the_next_cycle_creates_the_rest(&setup, PEOPLE, done);
}

/// Rewrites the `sn` of `user{i:02}` in the directory file.
fn rename(ws: &Workspace, i: usize, sn: &str) {
    ws.edit_ldif(|text| with_value(text, &user_dn(&uid(i)), "sn", sn));
}

/// The target acts on the first `method` request to `path` (after `skip`), but answers after
/// the client gave up.
fn lost_answer(setup: &Setup, method: &str, path: &str, skip: u32) -> FaultProxy {
    setup.proxy(
        json!([{"method": method, "path": path, "skip": skip, "count": 1,
                        "fault": "delay_after", "seconds": 2.5}]),
    )
}

/// Leavers deleted, so that a lost DELETE answer is tried too; `timeout` seconds per answer.
fn deleting(setup: &Setup, url: &str, timeout: u64) -> Config {
    setup
        .config(url)
        .option("remove_user_action", "delete")
        .channel_setting("timeout", timeout)
}

#[test]
fn a_conditional_write_whose_answer_was_lost_is_retried_with_the_version_read_again() {
    let setup = setup(3);
    setup.apply(&deleting(&setup, &setup.target.url, 10));
    setup.ws.sync_expecting(0, &["created 3, linked 0"]);
    a_lost_patch_answer_is_retried_with_the_version_read_again(&setup);
    a_stale_version_is_read_again_before_a_patch_whose_answer_is_lost(&setup);
    a_lost_delete_answer_is_a_delete_done(&setup);

    // Settled: the next cycle has nothing to do.
    setup.ws.sync_expecting(
        0,
        &["created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"],
    );
}

/// The target applies the PATCH (its version moves on) but answers after the client gave up:
/// the retry carries the version read again, not the one the target no longer has.
fn a_lost_patch_answer_is_retried_with_the_version_read_again(setup: &Setup) {
    let proxy = lost_answer(setup, "PATCH", "/scim/v2/Users/", 0);
    setup.apply(&deleting(setup, &proxy.url("/scim/v2"), 1));
    rename(&setup.ws, 0, "Changed 0");
    setup.ws.sync_expecting(
        0,
        &["created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"],
    );
    assert_eq!(
        setup.target.client().user_by_name("user00").unwrap()["name"]["familyName"],
        "Changed 0"
    );
    let stats = proxy.stats();
    assert_eq!(stats["PATCH /scim/v2/Users/{id}"], 2, "{stats:?}");
    assert_eq!(
        stats.get("PATCH /scim/v2/Users/{id} 412"),
        None,
        "the retry was refused as stale: {stats:?}"
    );
}

/// user01 changed in the target since our last write, so the version we keep is stale: the
/// first PATCH gets 412, the version is read, and the answer to the PATCH sent with it is lost.
fn a_stale_version_is_read_again_before_a_patch_whose_answer_is_lost(setup: &Setup) {
    let client = setup.target.client();
    client.patch_user(
        &client.id_of("user01"),
        json!([{"op": "add", "path": "title", "value": "Set by hand"}]),
    );
    let proxy = lost_answer(setup, "PATCH", "/scim/v2/Users/", 1);
    setup.apply(&deleting(setup, &proxy.url("/scim/v2"), 1));
    rename(&setup.ws, 1, "Changed 1");
    setup.ws.sync_expecting(
        0,
        &["created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"],
    );
    let user = client.user_by_name("user01").unwrap();
    assert_eq!(user["name"]["familyName"], "Changed 1");
    assert_eq!(
        user["title"], "Set by hand",
        "PATCH leaves what we do not map"
    );
    let stats = proxy.stats();
    assert_eq!(stats["PATCH /scim/v2/Users/{id} 412"], 1, "{stats:?}");
}

/// A DELETE whose answer was lost: the user is gone, which is what was wanted.
fn a_lost_delete_answer_is_a_delete_done(setup: &Setup) {
    let proxy = lost_answer(setup, "DELETE", "/scim/v2/Users/", 0);
    setup.apply(&deleting(setup, &proxy.url("/scim/v2"), 1));
    // user00 leaves (not the last entry: a file that lost its last entries looks cut short).
    setup
        .ws
        .edit_ldif(|text| without_entry(text, &user_dn("user00")));
    setup.ws.sync_expecting(
        0,
        &["created 0, linked 0, updated 0, disabled 0, deleted 1, failed 0"],
    );
    setup.assert_users(2);
}

/// Users `user00`…, one whose userName holds a double quote and one with a backslash, and a
/// group of two of them.
fn directory_with_quotes(people: usize) -> String {
    let odd = |cn: &str, uid: &str, n: &str| {
        Entry::new(&format!("cn={cn},{PEOPLE}"), "inetOrgPerson")
            .with("uid", uid)
            .with("sn", cn)
            .with(
                "entryUUID",
                &format!("00000000-0000-0000-0000-0000000000{n}"),
            )
    };
    let mut entries = vec![Entry::ou("people")];
    entries.extend((0..people).map(person));
    entries.extend([
        odd("Quote", "d\"quote", "a1"),
        odd("Backslash", "b\\slash", "a2"),
        Entry::ou("groups"),
        Entry::group("crew")
            .group_guid(1)
            .with("member", &format!("cn=Quote,{PEOPLE}"))
            .members(&["user00"]),
    ]);
    ldif(entries)
}

/// Every look-up filter, on users and groups alike, answered `400 invalidFilter`.
fn refusing_filters(setup: &Setup) -> FaultProxy {
    setup.proxy(
        json!([{"method": "GET", "path": "/scim/v2/", "query_contains": "filter=", "count": -1,
                "fault": "status", "status": 400, "scim_type": "invalidFilter"}]),
    )
}

/// A channel that also provisions the groups, with `use_bulk` as given, two results a page.
fn with_groups(setup: &Setup, url: &str, use_bulk: bool) -> Config {
    setup
        .config(url)
        .target("use_bulk", use_bulk)
        .target("results_per_page", 2)
        .location("group_base_dn", GROUPS)
}

/// The target refuses every filter: users (with a double quote and a backslash among them) and
/// groups are found by listing, page by page, so each is created once, linked from a new data
/// directory rather than duplicated, and the next cycle has nothing to do.
fn a_target_refusing_filters_is_listed(use_bulk: bool) {
    let setup = setup(0);
    setup.ws.write_ldif(&directory_with_quotes(4));
    let proxy = refusing_filters(&setup);
    let config = with_groups(&setup, &proxy.url("/scim/v2"), use_bulk);
    setup.apply(&config);
    let (code, out) = setup.sync();
    // With Bulk the group is created empty first, and its members added afterwards.
    assert_has(
        &out,
        &[
            "created 6, linked 0, updated 0, disabled 0, deleted 0, failed 0",
            "groups: created 1, linked 0,",
            "deleted 0, failed 0 in",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    setup.assert_users(6);
    let client = setup.target.client();
    let quote = client.user_by_name("d\\\"quote").unwrap();
    assert!(client.user_by_name("b\\\\slash").is_some());
    let (_, groups) = client.get("/Groups", &[]);
    assert_eq!(groups["totalResults"], 1, "{groups}");
    let members: BTreeSet<&str> = groups["Resources"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert!(members.contains(quote["id"].as_str().unwrap()), "{groups}");
    assert_eq!(members.len(), 2, "{groups}");
    // The refusal is remembered for the cycle: only the look-ups already under way when the
    // first refusal came (max_threads = 2) sent a filter.
    let before = proxy.stats();
    assert!((1..=2).contains(&before["faults"]), "{before:?}");

    // A new data directory knows nothing: every user and the group are found and linked.
    let again = setup.ws.with_data_dir("again");
    again.apply_unchecked(&config);
    let out = again.sync();
    assert_has(
        &out,
        &[
            "created 0, linked 6, updated 0, disabled 0, deleted 0, failed 0",
            "groups: created 0, linked 1, updated 0, deleted 0, failed 0",
        ],
    );
    setup.assert_users(6);
    let (_, groups) = client.get("/Groups", &[]);
    assert_eq!(groups["totalResults"], 1, "{groups}");
    let after = proxy.stats();
    assert!(
        (1..=2).contains(&(after["faults"] - before["faults"])),
        "{after:?}"
    );
    // Six users listed two at a time (results_per_page): three pages per listing, one listing
    // per user, or one for all of them with Bulk.
    let pages = after["GET /scim/v2/Users 200"] - before["GET /scim/v2/Users 200"];
    assert!(pages >= if use_bulk { 3 } else { 6 * 3 }, "{after:?}");

    // Settled: nothing left to send.
    let out = again.sync();
    assert_has(
        &out,
        &[
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0",
            "(0 requests;",
        ],
    );
}

#[test]
fn a_target_that_refuses_the_look_up_filter_is_listed_page_by_page() {
    a_target_refusing_filters_is_listed(false);
}

#[test]
fn a_target_that_refuses_the_bulk_look_up_filter_is_listed_page_by_page() {
    a_target_refusing_filters_is_listed(true);
}

#[test]
fn a_refused_filter_finds_users_by_work_email_but_a_custom_filter_fails_clearly() {
    let setup = setup(0);
    setup.ws.write_ldif(&ldif([
        Entry::ou("people"),
        person(0).with("mail", "user00@example.com"),
        person(1).with("mail", "user01@example.com"),
    ]));
    // Made by hand under another userName: only its work email (in other case) says it is user00.
    setup.target.client().create_user(
        "someone",
        json!({"emails": [{"value": "USER00@Example.COM", "type": "work"}]}),
    );
    let proxy = refusing_filters(&setup);
    let by_email = setup
        .config(&proxy.url("/scim/v2"))
        .map("workEmail", "mail")
        .target("unique_user_identifier", "workEmail");
    setup.apply(&by_email);
    setup.ws.sync_expecting(
        0,
        &["created 1, linked 1, updated 0, disabled 0, deleted 0, failed 0"],
    );
    setup.assert_users(2);
    assert!(setup.target.client().user_by_name("someone").is_none());

    // A custom filter cannot be emulated by listing: the users fail, and the reason says why.
    let custom = setup.ws.with_data_dir("custom");
    custom.apply_unchecked(
        &setup
            .config(&proxy.url("/scim/v2"))
            .map("workEmail", "mail")
            .target("filter_expression", "externalId eq \"%s\""),
    );
    let (code, out) = custom.try_sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("failed 2"), "{out}");
    assert!(
        out.contains(
            "failed user00: the target refuses the look-up filter externalId eq \"user00\" made from target.filter_expression, and a custom filter cannot be replaced by listing users"
        ),
        "{out}"
    );
    setup.assert_users(2);
}

#[test]
fn a_group_patch_whose_answer_was_lost_is_sent_again_safely() {
    let setup = setup(0);
    setup.ws.write_ldif(&directory_with_quotes(2));
    setup.apply(&with_groups(&setup, &setup.target.url, false));
    setup.ws.sync_expecting(0, &["groups: created 1,"]);

    // The target applies the member changes (an add and a remove in one PATCH) but answers
    // after the client gave up: the PATCH is sent again, and neither change doubles or fails.
    let proxy = lost_answer(&setup, "PATCH", "/scim/v2/Groups/", 0);
    setup.apply(&with_groups(&setup, &proxy.url("/scim/v2"), false).channel_setting("timeout", 1));
    setup.ws.edit_ldif(|text| {
        text.replace(
            &format!("member: {}\n", user_dn("user00")),
            &format!("member: {}\n", user_dn("user01")),
        )
    });
    setup.ws.sync_expecting(
        0,
        &["groups: created 0, linked 0, updated 1, deleted 0, failed 0"],
    );
    let stats = proxy.stats();
    assert_eq!(stats["PATCH /scim/v2/Groups/{id}"], 2, "{stats:?}");
    let client = setup.target.client();
    let (_, groups) = client.get("/Groups", &[]);
    let members: Vec<&str> = groups["Resources"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    let wanted = BTreeSet::from([client.id_of("d\\\"quote"), client.id_of("user01")]);
    assert_eq!(
        members
            .iter()
            .map(|m| m.to_string())
            .collect::<BTreeSet<_>>(),
        wanted
    );
    assert_eq!(members.len(), 2, "{groups}");

    // Settled.
    let (_, out) = setup.sync();
    assert!(out.contains("(0 requests;"), "{out}");
}
