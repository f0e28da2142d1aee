//! Polite and safe under faults: 429 and 503 answers waited for, 5xx and dropped connections
//! retried, lost answers never turned into duplicates, failures recorded and retried by the
//! next cycle. The faults come from a proxy in front of the bundled target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
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
    // Each create was tried twice (max_retries = 1), each time after a look-up.
    let stats = proxy.stats();
    assert_eq!(stats["POST /scim/v2/Users"], 8, "{stats:?}");
    assert_eq!(stats["GET /scim/v2/Users"], 8, "{stats:?}");

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
