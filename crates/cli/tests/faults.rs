//! Polite and safe under faults: 429 and 503 answers waited for, 5xx and dropped connections
//! retried, lost answers never turned into duplicates nor into 412s, refused look-up filters
//! replaced by listing, failures recorded and retried by the next cycle. The faults come from a
//! proxy in front of the bundled target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use scimbridge_engine::state::JournalStore;
use scimbridge_model::{ChannelKey, JournalEntry};
use scimbridge_store::{Sealed, SecretKey, SqliteStore};
use scimbridge_testkit::faults::FaultProxy;
use serde_json::json;

fn directory(people: usize) -> String {
    let mut text = String::from(
        "version: 1\n\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n",
    );
    for i in 0..people {
        text.push_str(&format!(
            "\ndn: uid=user{i:02},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: user{i:02}\nsn: Number {i}\nentryUUID: 00000000-0000-0000-0000-{i:012}\n"
        ));
    }
    text
}

fn config(ldif: &Path, url: &str, extra_target: &str, timeout: u64) -> String {
    format!(
        r#"version = 1

[[data_store]]
name = "corp"
type = "ldif"
path = "{ldif}"

[[connection]]
name = "app"
active = true

[connection.target]
scim_url = "{url}"
authentication = "oauth2-bearer"
access_token = "t0ken"
use_bulk = false
{extra_target}

[[connection.channel]]
name = "staff"
data_store = "corp"
timeout = {timeout}
max_threads = 2

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
familyName = {{ attributes = ["sn"] }}
"#,
        ldif = ldif.display()
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    ldif: std::path::PathBuf,
    cfg: std::path::PathBuf,
    target: TargetProcess,
}

fn setup(people: usize) -> Setup {
    let dir = temp_dir();
    let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory(people)).unwrap();
    Setup {
        data: dir.path().join("data"),
        cfg: dir.path().join("app.toml"),
        ldif,
        target,
        _dir: dir,
    }
}

impl Setup {
    fn upstream(&self) -> String {
        self.target.url.strip_suffix("/scim/v2").unwrap().to_owned()
    }

    fn apply(&self, url: &str, extra_target: &str, timeout: u64) {
        std::fs::write(&self.cfg, config(&self.ldif, url, extra_target, timeout)).unwrap();
        ok(scimbridge(
            &self.data,
            &["apply", "--skip-check", "-f", &path_str(&self.cfg)],
            &[],
        ));
    }

    fn sync(&self) -> (Option<i32>, String) {
        let output = scimbridge(&self.data, &["sync", "app"], &[]);
        (
            output.status.code(),
            format!("{}{}", stdout(&output), stderr(&output)),
        )
    }

    /// Opens the state store as the binary does, to set up what a crash leaves behind.
    fn with_store<T>(&self, work: impl AsyncFnOnce(&Sealed<SqliteStore>) -> T) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let key = SecretKey::load_or_create(&self.data.join("secret.key")).unwrap();
            let backend = SqliteStore::open(&self.data.join("state.db"))
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
                guid: format!("00000000-0000-0000-0000-{i:012}"),
                dn: format!("uid=user{i:02},ou=people,dc=example,dc=com"),
                label: format!("user{i:02}"),
                operation: (*operation).into(),
                cycle_id: 41,
                sent_at_ms: 1_700_000_000_000,
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
        let users = self.target.client().users();
        let names: BTreeSet<String> = users
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(users.len(), count, "{names:?}");
        assert_eq!(names.len(), count, "a user exists twice");
    }
}

#[test]
fn rate_limits_and_unavailable_answers_are_waited_for_and_5xx_retried() {
    let setup = setup(12);
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([
            {"method": "POST", "path": "/scim/v2/Users", "skip": 2, "count": 2,
             "fault": "status", "status": 429, "retry_after": "1"},
            {"method": "GET", "path": "/scim/v2/Users", "skip": 4, "count": 1,
             "fault": "status", "status": 503, "retry_after": "0"},
            {"method": "GET", "path": "/scim/v2/Users", "skip": 7, "count": 2,
             "fault": "status", "status": 502},
        ]),
    );
    setup.apply(&proxy.url("/scim/v2"), "", 10);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("created 12, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
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
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([
            // The target creates these two users, but answers after the client gave up.
            {"method": "POST", "path": "/scim/v2/Users", "skip": 2, "count": 2,
             "fault": "delay_after", "seconds": 2.5},
            // This create never reaches the target.
            {"method": "POST", "path": "/scim/v2/Users", "skip": 6, "count": 1, "fault": "drop"},
        ]),
    );
    setup.apply(&proxy.url("/scim/v2"), "", 1);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created 10, linked 0"), "{out}");
    setup.assert_users(10);
    let stats = proxy.stats();
    // 10 creates, plus one more for the dropped one; none for the two whose answer was lost,
    // because the look-up after the timeout found them.
    assert_eq!(stats["POST /scim/v2/Users"], 11, "{stats:?}");

    // The next cycle has nothing to do.
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created 0, linked 0, updated 0"), "{out}");
}

#[test]
fn a_target_that_keeps_failing_fails_the_records_which_the_next_cycle_retries() {
    let setup = setup(4);
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "POST", "path": "/scim/v2/Users", "count": -1,
                 "fault": "status", "status": 500}]),
    );
    setup.apply(&proxy.url("/scim/v2"), "max_retries = 1", 10);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 4"),
        "{out}"
    );
    assert!(
        out.contains("failed user00: POST http://127.0.0.1:")
            && out.contains("HTTP 500: injected fault"),
        "{out}"
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
    setup.apply(&setup.target.url, "max_retries = 1", 10);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("created 4, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    setup.assert_users(4);
}

#[test]
fn the_bundled_target_s_own_faults_are_ridden_out() {
    // The same faults, injected by `target serve` itself: 429 with Retry-After on every 4th
    // request, a dropped connection on every 7th.
    let dir = temp_dir();
    let (mut child, url) = serve_target(
        &[
            "--token",
            "t0ken",
            "--fault-error-every",
            "4",
            "--fault-status",
            "429",
            "--fault-retry-after",
            "1",
            "--fault-drop-every",
            "7",
        ],
        &dir.path().join("target.db"),
    );
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory(8)).unwrap();
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &url, "max_retries = 5", 10)).unwrap();
    let data = dir.path().join("data");
    ok(scimbridge(
        &data,
        &["apply", "--skip-check", "-f", &path_str(&cfg)],
        &[],
    ));
    let output = scimbridge(&data, &["sync", "app"], &[]);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("created 8, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
}

#[test]
fn a_record_that_keeps_failing_waits_longer_between_attempts() {
    let setup = setup(3);
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "POST", "path": "/scim/v2/Users", "count": -1,
                 "fault": "status", "status": 500}]),
    );
    setup.apply(&proxy.url("/scim/v2"), "max_retries = 0", 10);
    // The first failure is retried by the very next cycle; the second starts the backoff.
    for _ in 0..2 {
        let (code, out) = setup.sync();
        assert_eq!(code, Some(3), "{out}");
        assert!(out.contains("failed 3 "), "{out}");
    }
    let posts = proxy.stats()["POST /scim/v2/Users"];
    assert_eq!(posts, 6);

    // Within the backoff the records wait: no request for them, and the cycle says so (and
    // still exits 3: users are missing from the target).
    let (code, out) = setup.sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("failed 0 (unchanged 0, skipped 0, blocked 0, failed earlier and waiting to be retried 3)"),
        "{out}"
    );
    assert_eq!(proxy.stats()["POST /scim/v2/Users"], posts);
    let plan = ok(scimbridge(&setup.data, &["plan", "app"], &[]));
    assert!(plan.contains("failed, waiting to be retried: 3"), "{plan}");

    // An entry edited in the directory is tried again at once; so is a user asked for by name.
    let text = std::fs::read_to_string(&setup.ldif).unwrap();
    std::fs::write(
        &setup.ldif,
        text.replace("sn: Number 1\n", "sn: Numéro 1\n"),
    )
    .unwrap();
    drop(proxy);
    setup.apply(&setup.target.url, "max_retries = 0", 10);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("created 1, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 0, skipped 0, blocked 0, failed earlier and waiting to be retried 2)"),
        "{out}"
    );
    ok(scimbridge(
        &setup.data,
        &["sync", "app", "--user", "user02"],
        &[],
    ));
    let names: BTreeSet<String> = setup
        .target
        .client()
        .users()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, BTreeSet::from(["user01".into(), "user02".into()]));
    // user00 still waits: `channels` counts it as failed and says the last cycle left some.
    let channels = ok(scimbridge(&setup.data, &["channels"], &[]));
    let row: Vec<&str> = channels
        .lines()
        .find(|l| l.starts_with("app "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row[4], "1", "{channels}");
    assert!(channels.contains("waiting to be retried)"), "{channels}");
}

#[test]
fn a_create_an_interrupted_cycle_sent_is_recognised_as_ours() {
    let setup = setup(3);
    setup.apply(&setup.target.url, "", 10);
    // The killed cycle's create of user00 reached the target; user01 was made by hand.
    let client = setup.target.client();
    for i in [0, 1] {
        let (status, body) = client.send(
            "POST",
            "/Users",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": format!("user{i:02}"), "name": {"familyName": format!("Number {i}")}}),
        );
        assert_eq!(status, 201, "{body}");
    }
    setup.interrupted(&[(0, "create")]);
    let plan = ok(scimbridge(&setup.data, &["plan", "app"], &[]));
    assert!(
        plan.contains("create user00: new in the source location (the create sent in cycle 41 was never settled)"),
        "{plan}"
    );

    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("created 2, linked 1, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(out.contains("never settled"), "the warning names it: {out}");
    setup.assert_users(3);
    assert_eq!(setup.unsettled(), 0);
    let history = ok(scimbridge(&setup.data, &["history", "user00"], &[]));
    assert!(
        history.contains("user-create") && history.contains("was never settled"),
        "{history}"
    );
}

#[test]
fn an_update_an_interrupted_cycle_may_have_sent_is_written_again() {
    let setup = setup(2);
    setup.apply(&setup.target.url, "", 10);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    // The killed cycle's update reached the target (the entry has been edited back since): the
    // target now differs from what the state store says it holds.
    let client = setup.target.client();
    let user = client.user_by_name("user00").unwrap();
    let (status, body) = client.send(
        "PATCH",
        &format!("/Users/{}", user["id"].as_str().unwrap()),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "name.familyName", "value": "Half-written"}]}),
    );
    assert_eq!(status, 200, "{body}");
    setup.interrupted(&[(0, "update")]);

    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"),
        "{out}"
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
    setup.apply(&setup.target.url, "", 10);
    // A create was sent for user07, who has left the directory since.
    setup.interrupted(&[(7, "create")]);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("was not sent again; check this user in the target"),
        "{out}"
    );
    assert_eq!(setup.unsettled(), 0);
    let history = ok(scimbridge(&setup.data, &["history", "user07"], &[]));
    assert!(history.contains("user-unsettled"), "{history}");
}

#[test]
fn serve_stopped_mid_cycle_finishes_what_is_in_flight_and_leaves_the_rest() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const PEOPLE: usize = 60;
    let dir = temp_dir();
    // A slow target: each answer takes 50 ms, so the cycle lasts seconds.
    let (mut target_process, url) = serve_target(
        &["--token", "t0ken", "--fault-latency-after-ms", "50"],
        &dir.path().join("target.db"),
    );
    let target = ScimReader {
        url: url.clone(),
        token: "t0ken".into(),
    };
    let ldif = dir.path().join("directory.ldif");
    std::fs::write(&ldif, directory(PEOPLE)).unwrap();
    let cfg = dir.path().join("app.toml");
    std::fs::write(&cfg, config(&ldif, &url, "", 10)).unwrap();
    let data = dir.path().join("data");
    ok(scimbridge(
        &data,
        &["apply", "--skip-check", "-f", &path_str(&cfg)],
        &[],
    ));

    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = output.clone();
    let reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let collector = std::thread::spawn(move || {
        for line in reader.lines() {
            lines.lock().unwrap().push(line.unwrap());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.users().len() < 5 {
        assert!(Instant::now() < deadline, "the cycle did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    collector.join().unwrap();
    let printed = output.lock().unwrap().join("\n");
    assert!(status.success(), "{status:?}\n{printed}");
    assert!(
        printed.contains("operations not done, the next cycle does them"),
        "{printed}"
    );
    let done = target.users().len();
    assert!(done < PEOPLE, "the stop came too late to prove anything");

    // Everything in flight settled before the exit: the next cycle creates the rest, links
    // nothing, duplicates nothing.
    let out = ok(scimbridge(&data, &["sync", "app"], &[]));
    assert!(
        out.contains(&format!("created {}, linked 0,", PEOPLE - done)),
        "{done} were in the target: {out}"
    );
    let users = target.users();
    let names: BTreeSet<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!((users.len(), names.len()), (PEOPLE, PEOPLE));
    let _ = target_process.kill();
    let _ = target_process.wait();
}

/// Rewrites the `sn` of `user{i:02}` in the directory file.
fn rename(ldif: &Path, i: usize, sn: &str) {
    let text = std::fs::read_to_string(ldif).unwrap();
    let edited = text.replace(&format!("sn: Number {i}\n"), &format!("sn: {sn}\n"));
    assert_ne!(text, edited);
    std::fs::write(ldif, edited).unwrap();
}

#[test]
fn a_conditional_write_whose_answer_was_lost_is_retried_with_the_version_read_again() {
    let setup = setup(3);
    // Deletes, so that a lost DELETE answer is tried too.
    let delete = "\n[connection.options]\nremove_user_action = \"delete\"";
    setup.apply(&setup.target.url, delete, 10);
    let (code, out) = setup.sync();
    assert!(out.contains("created 3, linked 0"), "{out}");
    assert_eq!(code, Some(0), "{out}");
    let client = setup.target.client();

    // The target applies the PATCH (its version moves on) but answers after the client gave up:
    // the retry carries the version read again, not the one the target no longer has.
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "PATCH", "path": "/scim/v2/Users/", "count": 1,
                 "fault": "delay_after", "seconds": 2.5}]),
    );
    setup.apply(&proxy.url("/scim/v2"), delete, 1);
    rename(&setup.ldif, 0, "Changed 0");
    let (code, out) = setup.sync();
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        client.user_by_name("user00").unwrap()["name"]["familyName"],
        "Changed 0"
    );
    let stats = proxy.stats();
    assert_eq!(stats["PATCH /scim/v2/Users/{id}"], 2, "{stats:?}");
    assert_eq!(
        stats.get("PATCH /scim/v2/Users/{id} 412"),
        None,
        "the retry was refused as stale: {stats:?}"
    );
    drop(proxy);

    // user01 changed in the target since our last write, so the version we keep is stale: the
    // first PATCH gets 412, the version is read, and the answer to the PATCH sent with it is lost.
    let user = client.user_by_name("user01").unwrap();
    let (status, body) = client.send(
        "PATCH",
        &format!("/Users/{}", user["id"].as_str().unwrap()),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "title", "value": "Set by hand"}]}),
    );
    assert_eq!(status, 200, "{body}");
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "PATCH", "path": "/scim/v2/Users/", "skip": 1, "count": 1,
                 "fault": "delay_after", "seconds": 2.5}]),
    );
    setup.apply(&proxy.url("/scim/v2"), delete, 1);
    rename(&setup.ldif, 1, "Changed 1");
    let (code, out) = setup.sync();
    assert!(
        out.contains("created 0, linked 0, updated 1, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
    let user = client.user_by_name("user01").unwrap();
    assert_eq!(user["name"]["familyName"], "Changed 1");
    assert_eq!(
        user["title"], "Set by hand",
        "PATCH leaves what we do not map"
    );
    let stats = proxy.stats();
    assert_eq!(stats["PATCH /scim/v2/Users/{id} 412"], 1, "{stats:?}");
    drop(proxy);

    // A DELETE whose answer was lost: the user is gone, which is what was wanted.
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "DELETE", "path": "/scim/v2/Users/", "count": 1,
                 "fault": "delay_after", "seconds": 2.5}]),
    );
    setup.apply(&proxy.url("/scim/v2"), delete, 1);
    // user00 leaves (not the last entry: a file that lost its last entries looks cut short).
    let text = std::fs::read_to_string(&setup.ldif).unwrap();
    let start = text.find("\ndn: uid=user00").unwrap();
    let end = text.find("\ndn: uid=user01").unwrap();
    std::fs::write(&setup.ldif, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let (code, out) = setup.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 1, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
    setup.assert_users(2);

    // Settled: the next cycle has nothing to do.
    let (code, out) = setup.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
}

/// Users `user00`…, one whose userName holds a double quote and one with a backslash, and a
/// group of two of them.
fn directory_with_quotes(people: usize) -> String {
    format!(
        "{}\n{}\n{}\n{}\n",
        directory(people),
        "dn: cn=Quote,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: d\"quote\nsn: Quote\nentryUUID: 00000000-0000-0000-0000-0000000000a1\n",
        "dn: cn=Backslash,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: b\\slash\nsn: Backslash\nentryUUID: 00000000-0000-0000-0000-0000000000a2\n",
        "dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: cn=crew,ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: crew\n\
         entryUUID: 99999999-0000-0000-0000-000000000001\n\
         member: cn=Quote,ou=people,dc=example,dc=com\n\
         member: uid=user00,ou=people,dc=example,dc=com\n",
    )
}

/// Every look-up filter, on users and groups alike, answered `400 invalidFilter`.
fn refusing_filters(setup: &Setup) -> FaultProxy {
    FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "GET", "path": "/scim/v2/", "query_contains": "filter=", "count": -1,
                 "fault": "status", "status": 400, "scim_type": "invalidFilter"}]),
    )
}

/// A channel that also provisions the groups, with `use_bulk` as given.
fn config_with_groups(setup: &Setup, url: &str, extra_target: &str, use_bulk: bool) -> String {
    config(&setup.ldif, url, extra_target, 10)
        .replace(
            "use_bulk = false",
            &format!("use_bulk = {use_bulk}\nresults_per_page = 2"),
        )
        .replace(
            "base_dn = \"ou=people,dc=example,dc=com\"\n",
            "base_dn = \"ou=people,dc=example,dc=com\"\ngroup_base_dn = \"ou=groups,dc=example,dc=com\"\n",
        )
}

/// The target refuses every filter: users (with a double quote and a backslash among them) and
/// groups are found by listing, page by page, so each is created once, linked from a new data
/// directory rather than duplicated, and the next cycle has nothing to do.
fn a_target_refusing_filters_is_listed(use_bulk: bool) {
    let setup = setup(0);
    std::fs::write(&setup.ldif, directory_with_quotes(4)).unwrap();
    let proxy = refusing_filters(&setup);
    let cfg = config_with_groups(&setup, &proxy.url("/scim/v2"), "", use_bulk);
    std::fs::write(&setup.cfg, &cfg).unwrap();
    ok(scimbridge(
        &setup.data,
        &["apply", "--skip-check", "-f", &path_str(&setup.cfg)],
        &[],
    ));
    let (code, out) = setup.sync();
    // With Bulk the group is created empty first, and its members added afterwards.
    assert!(
        out.contains("created 6, linked 0, updated 0, disabled 0, deleted 0, failed 0")
            && out.contains("groups: created 1, linked 0,")
            && out.contains("deleted 0, failed 0 in"),
        "{out}"
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
    let again = setup._dir.path().join("again");
    ok(scimbridge(
        &again,
        &["apply", "--skip-check", "-f", &path_str(&setup.cfg)],
        &[],
    ));
    let out = ok(scimbridge(&again, &["sync", "app"], &[]));
    assert!(
        out.contains("created 0, linked 6, updated 0, disabled 0, deleted 0, failed 0")
            && out.contains("groups: created 0, linked 1, updated 0, deleted 0, failed 0"),
        "{out}"
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
    let out = ok(scimbridge(&again, &["sync", "app"], &[]));
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0")
            && out.contains("(0 requests;"),
        "{out}"
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
    let setup = setup(2);
    let text = std::fs::read_to_string(&setup.ldif).unwrap();
    let text = (0..2).fold(text, |text, i| {
        text.replace(
            &format!("sn: Number {i}\n"),
            &format!("sn: Number {i}\nmail: user{i:02}@example.com\n"),
        )
    });
    std::fs::write(&setup.ldif, text).unwrap();
    // Made by hand under another userName: only its work email (in other case) says it is user00.
    let (status, body) = setup.target.client().send(
        "POST",
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "someone",
                "emails": [{"value": "USER00@Example.COM", "type": "work"}]}),
    );
    assert_eq!(status, 201, "{body}");
    let proxy = refusing_filters(&setup);
    let write = |data: &Path, extra_target: &str| {
        let cfg = config(&setup.ldif, &proxy.url("/scim/v2"), extra_target, 10)
            + "workEmail = { attributes = [\"mail\"] }\n";
        std::fs::write(&setup.cfg, cfg).unwrap();
        ok(scimbridge(
            data,
            &["apply", "--skip-check", "-f", &path_str(&setup.cfg)],
            &[],
        ));
    };
    write(&setup.data, "unique_user_identifier = \"workEmail\"");
    let (code, out) = setup.sync();
    assert!(
        out.contains("created 1, linked 1, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
    setup.assert_users(2);
    assert!(setup.target.client().user_by_name("someone").is_none());

    // A custom filter cannot be emulated by listing: the users fail, and the reason says why.
    let custom = setup._dir.path().join("custom");
    write(&custom, "filter_expression = 'externalId eq \"%s\"'");
    let output = scimbridge(&custom, &["sync", "app"], &[]);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(3), "{out}");
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
    std::fs::write(&setup.ldif, directory_with_quotes(2)).unwrap();
    std::fs::write(
        &setup.cfg,
        config_with_groups(&setup, &setup.target.url, "", false),
    )
    .unwrap();
    ok(scimbridge(
        &setup.data,
        &["apply", "--skip-check", "-f", &path_str(&setup.cfg)],
        &[],
    ));
    let (code, out) = setup.sync();
    assert!(out.contains("groups: created 1,"), "{out}");
    assert_eq!(code, Some(0), "{out}");

    // The target applies the member changes (an add and a remove in one PATCH) but answers
    // after the client gave up: the PATCH is sent again, and neither change doubles or fails.
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "PATCH", "path": "/scim/v2/Groups/", "count": 1,
                 "fault": "delay_after", "seconds": 2.5}]),
    );
    std::fs::write(
        &setup.cfg,
        config_with_groups(&setup, &proxy.url("/scim/v2"), "", false)
            .replace("timeout = 10", "timeout = 1"),
    )
    .unwrap();
    ok(scimbridge(
        &setup.data,
        &["apply", "--skip-check", "-f", &path_str(&setup.cfg)],
        &[],
    ));
    let text = std::fs::read_to_string(&setup.ldif).unwrap();
    std::fs::write(
        &setup.ldif,
        text.replace(
            "member: uid=user00,ou=people,dc=example,dc=com\n",
            "member: uid=user01,ou=people,dc=example,dc=com\n",
        ),
    )
    .unwrap();
    let (code, out) = setup.sync();
    assert!(
        out.contains("groups: created 0, linked 0, updated 1, deleted 0, failed 0"),
        "{out}"
    );
    assert_eq!(code, Some(0), "{out}");
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
    let id = |name: &str| {
        client.user_by_name(name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let wanted = BTreeSet::from([id("d\\\"quote"), id("user01")]);
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
