//! Nobody loses access by accident, whatever breaks: a directory file cut short or still being
//! written, two entries claiming one target user, a user whose update fails, mass changes on a
//! small channel, a target that is down. Each against the bundled target, run as its own process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use scimbridge_testkit::faults::FaultProxy;
use serde_json::{Value, json};

const PEOPLE_BASE: &str = "ou=people,dc=example,dc=com";

fn person(uid: &str, n: usize) -> String {
    format!(
        "dn: uid={uid},{PEOPLE_BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.com\ntitle: Engineer\nentryUUID: 00000000-0000-0000-0000-{n:012}\n"
    )
}

fn group(cn: &str, n: usize, members: &[String]) -> String {
    let mut text = format!(
        "dn: cn={cn},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: {cn}\nentryUUID: 99999999-0000-0000-0000-{n:012}\n"
    );
    for uid in members {
        text.push_str(&format!("member: uid={uid},{PEOPLE_BASE}\n"));
    }
    text
}

/// An LDIF directory: the people (uid, GUID number), then the groups (name, member uids), each
/// group's GUID made from its name.
fn directory(people: &[(String, usize)], groups: &[(String, Vec<String>)]) -> String {
    let mut blocks = vec![
        "version: 1\n".to_owned(),
        format!("dn: {PEOPLE_BASE}\nobjectClass: organizationalUnit\nou: people\n"),
        "dn: ou=groups,dc=example,dc=com\nobjectClass: organizationalUnit\nou: groups\n".into(),
    ];
    blocks.extend(people.iter().map(|(uid, n)| person(uid, *n)));
    blocks.extend(groups.iter().map(|(cn, members)| {
        let n = cn.bytes().fold(0usize, |n, b| {
            (n * 131 + usize::from(b)) % 1_000_000_000_000
        });
        group(cn, n, members)
    }));
    blocks.join("\n")
}

fn numbered(count: usize) -> Vec<(String, usize)> {
    (0..count).map(|i| (format!("user{i:02}"), i)).collect()
}

fn config(ldif: &Path, url: &str, extra: &str) -> String {
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
max_retries = 1

[[connection.channel]]
name = "staff"
data_store = "corp"
timeout = 5

[connection.channel.source_location]
base_dn = "{PEOPLE_BASE}"
group_base_dn = "ou=groups,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = {{ attributes = ["uid"] }}
externalId = {{ attributes = ["entryUUID"] }}
familyName = {{ attributes = ["sn"] }}
workEmail = {{ attributes = ["mail"] }}
title = {{ attributes = ["title"] }}
{extra}"#,
        ldif = ldif.display()
    )
}

struct Setup {
    dir: tempfile::TempDir,
    data: PathBuf,
    ldif: PathBuf,
    cfg: PathBuf,
    target: TargetProcess,
}

impl Setup {
    fn new(text: &str) -> Setup {
        let dir = temp_dir();
        let target = TargetProcess::start(&dir.path().join("target.db"), "t0ken");
        let setup = Setup {
            data: dir.path().join("data"),
            ldif: dir.path().join("directory.ldif"),
            cfg: dir.path().join("app.toml"),
            target,
            dir,
        };
        setup.write(text);
        setup
    }

    fn upstream(&self) -> String {
        self.target.url.strip_suffix("/scim/v2").unwrap().to_owned()
    }

    /// Writes the directory file as a finished export: last modified a while ago, so that the
    /// cycle need not wait for it to settle.
    fn write(&self, text: &str) {
        write_settled(&self.ldif, text.as_bytes());
    }

    fn apply(&self, url: &str, extra: &str) {
        std::fs::write(&self.cfg, config(&self.ldif, url, extra)).unwrap();
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

    fn run(&self, args: &[&str]) -> String {
        ok(scimbridge(&self.data, args, &[]))
    }

    /// What a user checking the target sees: each user's attributes (without `meta`) and each
    /// group's member user names.
    fn target_state(&self) -> (BTreeMap<String, Value>, BTreeMap<String, BTreeSet<String>>) {
        let client = self.target.client();
        let mut names = BTreeMap::new();
        let users: BTreeMap<String, Value> = client
            .users()
            .into_iter()
            .map(|mut user| {
                user.as_object_mut().unwrap().remove("meta");
                let name = user["userName"].as_str().unwrap().to_owned();
                names.insert(user["id"].as_str().unwrap().to_owned(), name.clone());
                (name, user)
            })
            .collect();
        let (status, page) = client.get("/Groups", &[("count", "1000")]);
        assert_eq!(status, 200, "{page}");
        let groups = page["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let members = g["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| names[m["value"].as_str().unwrap()].clone())
                    .collect();
                (g["displayName"].as_str().unwrap().to_owned(), members)
            })
            .collect();
        (users, groups)
    }

    fn members(&self, group: &str) -> BTreeSet<String> {
        self.target_state().1.remove(group).unwrap_or_default()
    }
}

fn write_settled(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_directory_file_cut_anywhere_deprovisions_blanks_or_relinks_nobody() {
    let sample = SAMPLE.as_bytes();
    let setup = Setup::new(SAMPLE);
    setup.apply(
        &setup.target.url,
        "displayName = { attributes = [\"displayName\", \"cn\"] }\n",
    );
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created 1000,"), "{out}");
    let before = setup.target_state();
    assert_eq!(before.1.len(), 20);

    // Where to cut: inside a GUID value, at the end of a line inside an entry, right before
    // and right after the blank line that ends an entry; among the people and the groups.
    let entry_starts: Vec<usize> = SAMPLE
        .match_indices("\n\ndn: ")
        .map(|(i, _)| i + 2)
        .collect();
    let first_group = SAMPLE.find("\n\ndn: cn=").unwrap() + 2;
    let groups_at = entry_starts.iter().position(|s| *s == first_group).unwrap();
    let chosen = [
        10,
        400,
        groups_at - 2,
        groups_at - 1,
        groups_at + 1,
        groups_at + 10,
        entry_starts.len() - 2,
        entry_starts.len() - 1,
    ];
    let mut cuts = vec![0, SAMPLE.find("\n\n").unwrap() + 2, sample.len() - 1];
    for &index in &chosen {
        let start = entry_starts[index];
        let end = entry_starts
            .get(index + 1)
            .copied()
            .unwrap_or(sample.len() + 1);
        let entry = &SAMPLE[start..end - 1];
        let value = entry
            .find("entryUUID: ")
            .or_else(|| entry.find("member: "))
            .unwrap();
        cuts.push(start + value + 14);
        cuts.push(start + entry.match_indices('\n').nth(3).unwrap().0 + 1);
        if let Some(last) = entry.rfind("\nmember: ") {
            cuts.push(start + last + 1);
        }
        cuts.push(end - 1);
        cuts.push(end.min(sample.len()));
    }
    cuts.retain(|cut| *cut < sample.len());
    cuts.sort();
    cuts.dedup();
    assert!(cuts.len() >= 35, "{cuts:?}");
    for cut in cuts {
        write_settled(&setup.ldif, &sample[..cut]);
        let (code, out) = setup.sync();
        assert!(
            code != Some(0) || out.contains("held "),
            "cut at {cut}: nothing said\n{out}"
        );
        let after = setup.target_state();
        assert!(
            after == before,
            "cut at {cut} changed the target:\n{out}\nusers changed: {:?}\ngroups changed: {:?}",
            after
                .0
                .iter()
                .filter(|(name, user)| before.0.get(*name) != Some(user))
                .map(|(name, _)| name)
                .collect::<Vec<_>>(),
            after
                .1
                .iter()
                .filter(|(name, members)| before.1.get(*name) != Some(members))
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        );
    }

    // The whole file again: nothing to do, and what was held is dropped.
    setup.write(SAMPLE);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("unchanged 1000,") && !out.contains("held"),
        "{out}"
    );
    assert!(setup.run(&["held", "app"]).contains("nothing held"));

    // A file still being written when the cycle starts: read once it is whole.
    let edited = SAMPLE.replace("title: VP of Sales\n", "title: Chief Revenue Officer\n");
    let path = setup.ldif.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in edited.as_bytes().chunks(64 * 1024) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    let (code, out) = setup.sync();
    writer.join().unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("updated 1, disabled 0, deleted 0, failed 0 (unchanged 999,"),
        "{out}"
    );
    assert!(!out.contains("groups:"), "{out}");
}

#[test]
fn the_last_lines_of_a_file_deleted_on_purpose_are_held_until_approved() {
    let people = numbered(12);
    let everyone: Vec<String> = people.iter().map(|(uid, _)| uid.clone()).collect();
    let groups = vec![("all".to_owned(), everyone.clone())];
    let setup = Setup::new(&directory(&people, &groups));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 12,"));

    // The last two members leave the last group: the file is the old one cut short.
    let fewer = vec![("all".to_owned(), everyone[..10].to_vec())];
    setup.write(&directory(&people, &fewer));
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("held 1:"), "{out}");
    assert_eq!(setup.members("all").len(), 12);
    let held = setup.run(&["held", "app"]);
    assert!(
        held.contains("update group all")
            && held.contains("looks cut short, or its last lines were deleted"),
        "{held}"
    );
    setup.run(&["approve", "app"]);
    let (_, out) = setup.sync();
    assert!(
        out.contains("groups: created 0, linked 0, updated 1,"),
        "{out}"
    );
    assert_eq!(setup.members("all").len(), 10);
    // Settled: the shorter file is now the one remembered.
    let (_, out) = setup.sync();
    assert!(!out.contains("held"), "{out}");
}

#[test]
fn two_entries_never_share_one_target_user() {
    let mut people = numbered(3);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 3,"));
    let before = setup.target.client().user_by_name("user01").unwrap();

    // A second active entry with user01's userName (another DN, another GUID).
    let copy = person("user01", 41).replace("dn: uid=user01,", "dn: uid=user01-copy,");
    setup.write(&format!("{}\n{copy}", directory(&people, &[])));
    let (code, out) = setup.sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("failed 1 "), "{out}");
    assert!(
        out.contains(&format!(
            "userName user01 is also the userName of uid=user01,{PEOPLE_BASE}"
        )),
        "{out}"
    );
    let after = setup.target.client().user_by_name("user01").unwrap();
    assert_eq!(after["externalId"], before["externalId"]);
    assert_eq!(setup.target.client().users().len(), 3);

    // The copy goes: user01 keeps its account. Then user01 goes: disabled, as it should be.
    setup.write(&directory(&people, &[]));
    let (_, out) = setup.sync();
    assert!(out.contains("disabled 0,"), "{out}");
    assert_eq!(
        setup.target.client().user_by_name("user01").unwrap()["active"],
        true
    );
    people.remove(1);
    setup.write(&directory(&people, &[]));
    let (_, out) = setup.sync();
    assert!(out.contains("disabled 1,"), "{out}");

    // Two newcomers with one userName (in any case) in one cycle: one is created, one fails.
    let twins = format!(
        "{}\n{}\n{}",
        directory(&people, &[]),
        person("twin", 50),
        person("TWIN", 51).replace("uid=TWIN", "uid=twin-2")
    );
    setup.write(&twins);
    let (_, out) = setup.sync();
    assert!(
        out.contains("created 1,") && out.contains("failed 1 "),
        "{out}"
    );
    assert!(
        out.contains("userName TWIN is also the userName of uid=twin,"),
        "{out}"
    );
    assert_eq!(setup.target.client().users().len(), 4);
}

#[test]
fn a_user_found_by_work_email_that_another_entry_owns_is_not_linked() {
    let people = numbered(2);
    let setup = Setup::new(&directory(&people, &[]));
    let by_email = "";
    std::fs::write(
        &setup.cfg,
        config(&setup.ldif, &setup.target.url, by_email).replace(
            "max_retries = 1",
            "max_retries = 1\nunique_user_identifier = \"workEmail\"",
        ),
    )
    .unwrap();
    setup.run(&["apply", "--skip-check", "-f", &path_str(&setup.cfg)]);
    assert!(setup.sync().1.contains("created 2,"));

    // A newcomer whose mail is user00's: the look-up by email finds user00's account.
    let newcomer = person("newcomer", 60).replace("mail: newcomer@", "mail: user00@");
    setup.write(&format!("{}\n{newcomer}", directory(&people, &[])));
    let (code, out) = setup.sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!(
            "belongs to another entry of this channel, uid=user00,{PEOPLE_BASE}"
        )),
        "{out}"
    );
    // user00's account was not renamed to the newcomer.
    let user00 = setup.target.client().user_by_name("user00").unwrap();
    assert_eq!(user00["externalId"], "00000000-0000-0000-0000-000000000000");
    assert!(setup.target.client().user_by_name("newcomer").is_none());
}

#[test]
fn a_user_whose_update_fails_or_is_held_keeps_its_groups() {
    let people = numbered(8);
    let everyone: Vec<String> = people.iter().map(|(uid, _)| uid.clone()).collect();
    let groups = vec![
        ("all".to_owned(), everyone.clone()),
        ("devs".to_owned(), everyone[..4].to_vec()),
        ("zz-last".to_owned(), Vec::new()),
    ];
    let setup = Setup::new(&directory(&people, &groups));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 8,"));
    let id = setup.target.client().user_by_name("user01").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The target refuses user01's updates, with 400 then with 500.
    for status in [400, 500] {
        let proxy = FaultProxy::start(
            &setup.upstream(),
            &json!([{"method": "PATCH", "path": format!("/scim/v2/Users/{id}"), "count": -1,
                     "fault": "status", "status": status}]),
        );
        setup.apply(&proxy.url("/scim/v2"), "");
        setup.write(
            &directory(&people, &groups)
                .replace("uid: user01\ncn: user01\nsn: user01\nmail: user01@example.com\ntitle: Engineer", &format!("uid: user01\ncn: user01\nsn: user01\nmail: user01@example.com\ntitle: Lead {status}")),
        );
        // It fails, is retried and fails again, then waits for its retry: a member all along.
        let mut waited = false;
        for _ in 0..3 {
            let (code, out) = setup.sync();
            assert_eq!(code, Some(3), "{out}");
            waited |= out.contains("waiting to be retried 1");
            assert!(out.contains("failed 1 ") || waited, "{out}");
            let plan = setup.run(&["plan", "app"]);
            assert!(!plan.contains("to remove"), "{plan}");
            assert!(setup.members("all").contains("user01"));
            assert!(setup.members("devs").contains("user01"));
        }
        assert!(waited);
        drop(proxy);
    }

    // Out of a group in the directory while failing: out of it in the target too.
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"method": "PATCH", "path": format!("/scim/v2/Users/{id}"), "count": -1,
                 "fault": "status", "status": 400}]),
    );
    setup.apply(&proxy.url("/scim/v2"), "");
    let moved = vec![
        ("all".to_owned(), everyone.clone()),
        (
            "devs".to_owned(),
            vec![
                everyone[0].clone(),
                everyone[2].clone(),
                everyone[3].clone(),
            ],
        ),
        ("zz-last".to_owned(), Vec::new()),
    ];
    setup.write(&directory(&people, &moved).replace(
        "title: Engineer\nentryUUID: 00000000-0000-0000-0000-000000000001",
        "title: Lead again\nentryUUID: 00000000-0000-0000-0000-000000000001",
    ));
    let (_, out) = setup.sync();
    assert!(out.contains("failed 1 "), "{out}");
    assert!(!setup.members("devs").contains("user01"));
    assert!(setup.members("all").contains("user01"));
    drop(proxy);

    // 5 of 8 leave at once: the disables are held, and so are their memberships.
    setup.apply(&setup.target.url, "");
    let staying: Vec<(String, usize)> = people[..3].to_vec();
    setup.write(&directory(&staying, &moved));
    let (_, out) = setup.sync();
    assert!(
        out.contains("disabled 0,") && out.contains("held 5:"),
        "{out}"
    );
    assert_eq!(setup.members("all").len(), 8);
    let plan = setup.run(&["plan", "app"]);
    assert!(!plan.contains("to remove"), "{plan}");
    // Approved: disabled, and only then out of their groups.
    setup.run(&["approve", "app"]);
    let (_, out) = setup.sync();
    assert!(out.contains("disabled 5,"), "{out}");
    assert_eq!(
        setup.members("all"),
        BTreeSet::from(["user00".into(), "user01".into(), "user02".into()])
    );
}

#[test]
fn the_guard_holds_mass_changes_on_a_small_channel() {
    let people = numbered(50);
    let everyone: Vec<String> = people.iter().map(|(uid, _)| uid.clone()).collect();
    let mut groups: Vec<(String, Vec<String>)> = (0..12)
        .map(|g| (format!("team{g:02}"), everyone[g * 4..g * 4 + 4].to_vec()))
        .collect();
    groups.push(("big".into(), everyone[..20].to_vec()));
    groups.push(("zz-last".into(), Vec::new()));
    let setup = Setup::new(&directory(&people, &groups));
    setup.apply(&setup.target.url, "");
    let (_, out) = setup.sync();
    assert!(out.contains("created 50,"), "{out}");
    let before = setup.target_state();

    // A mapping typo clears everyone's email: held (the count rule, 500, would not).
    std::fs::write(
        &setup.cfg,
        config(&setup.ldif, &setup.target.url, "").replace("[\"mail\"]", "[\"mial\"]"),
    )
    .unwrap();
    setup.run(&["apply", "--skip-check", "-f", &path_str(&setup.cfg)]);
    let (_, out) = setup.sync();
    assert!(
        out.contains("updated 0,") && out.contains("held 50:"),
        "{out}"
    );
    assert_eq!(setup.target_state(), before);
    let held = setup.run(&["held", "app"]);
    assert!(
        held.contains("50 of 50 users would lose emails at once (100%), more than guard.max_blanked_percent 10%"),
        "{held}"
    );
    setup.apply(&setup.target.url, "");
    let (_, out) = setup.sync();
    assert!(!out.contains("held"), "{out}");

    // 8 of 14 groups leave the directory (not the last ones): held.
    let kept: Vec<(String, Vec<String>)> = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| !(2..10).contains(i))
        .map(|(_, g)| g.clone())
        .collect();
    setup.write(&directory(&people, &kept));
    let (_, out) = setup.sync();
    assert!(out.contains("held 8:"), "{out}");
    assert_eq!(setup.target_state(), before);
    let held = setup.run(&["held", "app"]);
    assert!(
        held.contains("8 of 14 groups would be deleted at once (57%), more than guard.max_group_delete_percent 10%"),
        "{held}"
    );

    // "big" loses half its members while gaining one: the additions go ahead, the removals wait.
    let mut shrunk = groups.clone();
    shrunk[12].1 = everyone[10..21].to_vec();
    setup.write(&directory(&people, &shrunk));
    let (_, out) = setup.sync();
    assert!(out.contains("held 1:"), "{out}");
    let big = setup.members("big");
    assert_eq!(big.len(), 21, "{big:?}");
    assert!(big.contains("user20"));
    let held = setup.run(&["held", "app"]);
    assert!(
        held.contains("10 of 20 members would be removed from big at once (50%), more than guard.max_member_removal_percent 25%"),
        "{held}"
    );
    setup.run(&["approve", "app"]);
    let (_, out) = setup.sync();
    assert!(!out.contains("held"), "{out}");
    assert_eq!(setup.members("big").len(), 11);
}

#[test]
fn a_target_that_is_down_stops_the_cycle_and_counts_against_no_record() {
    let people = numbered(30);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 30,"));
    let promoted = directory(&people, &[]).replace("title: Engineer", "title: Senior Engineer");
    setup.write(&promoted);

    let unreachable = format!(
        "http://127.0.0.1:{}/scim/v2",
        scimbridge_testkit::free_port()
    );
    let refusing = FaultProxy::start(
        &setup.upstream(),
        &json!([{"count": -1, "fault": "status", "status": 500}]),
    );
    let cases = [
        (
            unreachable.clone(),
            "",
            "nothing answers at target.scim_url",
        ),
        (
            setup.target.url.clone(),
            "wrong",
            "the target refused the credentials",
        ),
        (
            refusing.url("/scim/v2"),
            "",
            "the target answered with an error",
        ),
    ];
    for (url, token, why) in cases {
        let cfg = config(&setup.ldif, &url, "");
        let cfg = if token.is_empty() {
            cfg
        } else {
            cfg.replace(
                "access_token = \"t0ken\"",
                &format!("access_token = \"{token}\""),
            )
        };
        std::fs::write(&setup.cfg, cfg).unwrap();
        setup.run(&["apply", "--skip-check", "-f", &path_str(&setup.cfg)]);
        let (code, out) = setup.sync();
        assert_eq!(code, Some(4), "{out}");
        assert!(out.contains(&format!("target unreachable: {why}")), "{out}");
        assert!(out.contains("failed 0 "), "{out}");
        // One reason, not a line per record.
        assert!(out.lines().count() < 8, "{out}");
        let channels = setup.run(&["channels"]);
        assert!(channels.contains("target unreachable"), "{channels}");
        // One user on demand: the same verdict, nothing counted.
        let one = scimbridge(&setup.data, &["sync", "app", "--user", "user00"], &[]);
        let printed = stdout(&one);
        assert_eq!(one.status.code(), Some(4), "{printed}");
        assert!(
            printed.contains(&format!("target unreachable: {why}")),
            "{printed}"
        );
    }

    // Back up: the next cycle does everything at once, nothing waits for a retry.
    setup.apply(&setup.target.url, "");
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("updated 30, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(!out.contains("waiting"), "{out}");
    assert!(
        setup
            .target
            .client()
            .users()
            .iter()
            .all(|u| u["title"] == "Senior Engineer")
    );
    let _ = &setup.dir;
}

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn the_service_shows_a_target_that_is_down_in_its_status_metrics_and_console() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    let setup = Setup::new(&directory(&numbered(5), &[]));
    let unreachable = format!(
        "http://127.0.0.1:{}/scim/v2",
        scimbridge_testkit::free_port()
    );
    setup.apply(&unreachable, "");
    ok(scimbridge(
        &setup.data,
        &["admin", "password"],
        &[("SCIMBRIDGE_ADMIN_PASSWORD", PASSWORD)],
    ));
    let created = setup.run(&["admin", "token", "create", "monitoring"]);
    let token = created
        .split_whitespace()
        .find(|word| word.len() >= 32)
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(&setup.data)
        .args(["serve", "--frequency", "3600", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});
    let api = first
        .split("admin API on ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("{first}"))
        .trim()
        .to_owned();
    let base = api.strip_suffix("/api").unwrap_or(&api).to_owned();
    let get = |path: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status: Value = serde_json::from_str(&get("/api/connections/app/status")).unwrap();
        if !status["channels"][0]["lastCycle"].is_null()
            && !status["channels"][0]["lastCycle"]["finishedAt"].is_null()
        {
            break status;
        }
        assert!(Instant::now() < deadline, "no cycle ended: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let metrics = get("/metrics");
    // The console's dashboard, as the administrator sees it.
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_on = no_redirects
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=administrator&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .unwrap();
    assert_eq!(signed_on.status().as_u16(), 303);
    let cookie = signed_on.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dashboard = no_redirects
        .get(format!("{base}/console/connections/app"))
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        dashboard.contains("target unreachable: nothing answers at target.scim_url"),
        "{dashboard}"
    );
    let channel = &status["channels"][0];
    assert_eq!(channel["targetUnreachable"], true, "{status}");
    assert!(
        channel["lastCycle"]["error"]
            .as_str()
            .unwrap()
            .starts_with("target unreachable: nothing answers at target.scim_url"),
        "{status}"
    );
    assert_eq!(channel["failed"], 0, "{status}");
    assert!(
        metrics.contains("scimbridge_target_unreachable{channel=\"app/staff\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "scimbridge_cycles_total{channel=\"app/staff\",outcome=\"target_unreachable\"} 1"
        ),
        "{metrics}"
    );
}

#[test]
fn a_rehire_takes_over_the_disabled_account_of_the_one_who_left() {
    let people = numbered(3);
    let everyone: Vec<String> = people.iter().map(|(uid, _)| uid.clone()).collect();
    let groups = vec![("all".to_owned(), everyone.clone())];
    let setup = Setup::new(&directory(&people, &groups));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 3,"));
    let before = setup.target.client().user_by_name("user01").unwrap();

    // user01 leaves: disabled, out of the group.
    let staying = vec![people[0].clone(), people[2].clone()];
    let without = vec![(
        "all".to_owned(),
        vec![everyone[0].clone(), everyone[2].clone()],
    )];
    setup.write(&directory(&staying, &without));
    let (_, out) = setup.sync();
    assert!(out.contains("disabled 1,"), "{out}");

    // Rehired: a new entry (another GUID) with the same userName takes the account back.
    let rehired = vec![
        people[0].clone(),
        ("user01".to_owned(), 41),
        people[2].clone(),
    ];
    setup.write(&directory(&rehired, &groups));
    let plan = setup.run(&["plan", "app"]);
    assert!(
        plan.contains(&format!(
            "create user01: new in the source location; takes over the disabled account of uid=user01,{PEOPLE_BASE}"
        )),
        "{plan}"
    );
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created 0, linked 1,"), "{out}");
    let after = setup.target.client().user_by_name("user01").unwrap();
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["active"], true);
    assert_eq!(after["externalId"], "00000000-0000-0000-0000-000000000041");
    assert!(setup.members("all").contains("user01"));
    assert_eq!(setup.target.client().users().len(), 3);
    // Settled: one record for the account, nothing more to do.
    let (_, out) = setup.sync();
    assert!(
        out.contains(
            "created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0 (unchanged 3,"
        ),
        "{out}"
    );
}

#[test]
fn a_target_that_falls_over_during_a_bulk_cycle_stops_it_at_once() {
    let people = numbered(300);
    let setup = Setup::new(&directory(&people, &[]));
    // Discovery, then two chunks of look-up and Bulk create, then errors to everything.
    let proxy = FaultProxy::start(
        &setup.upstream(),
        &json!([{"skip": 5, "count": -1, "fault": "status", "status": 500}]),
    );
    std::fs::write(
        &setup.cfg,
        config(&setup.ldif, &proxy.url("/scim/v2"), "")
            .replace("use_bulk = false", "use_bulk = true"),
    )
    .unwrap();
    setup.run(&["apply", "--skip-check", "-f", &path_str(&setup.cfg)]);
    let (code, out) = setup.sync();
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("created 200,"), "{out}");
    assert!(
        out.contains("target unreachable: the target answered with an error"),
        "{out}"
    );
    assert!(out.contains("100 operations not sent"), "{out}");
    // It stopped after a few failed requests, not after trying each remaining user.
    let faults = proxy.stats()["faults"];
    assert!(faults <= 8, "{faults} requests failed: {:?}", proxy.stats());
    drop(proxy);

    setup.apply(&setup.target.url, "");
    let (code, out) = setup.sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("created 100, linked 0,") && !out.contains("waiting"),
        "{out}"
    );
    assert_eq!(setup.target.client().users().len(), 300);
}

#[test]
fn one_user_on_demand_reads_the_directory_file_as_carefully_as_a_cycle() {
    let people = numbered(6);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 6,"));
    let whole = directory(&people, &[]);

    // Cut before user05's entry: user05 is not taken for a leaver.
    let cut = &whole[..whole.find("dn: uid=user05").unwrap()];
    setup.write(cut);
    let output = scimbridge(&setup.data, &["sync", "app", "--user", "user05"], &[]);
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("looks cut short") && printed.contains("nothing is written on demand"),
        "{printed}"
    );
    assert_eq!(
        setup.target.client().user_by_name("user05").unwrap()["active"],
        true
    );

    // user02's entry moved (same GUID, another DN): found by its GUID, not disabled.
    setup.write(&whole.replace("dn: uid=user02,", "dn: uid=user02-moved,"));
    let out = setup.run(&["sync", "app", "--user", "user02"]);
    assert!(!out.contains("disable"), "{out}");
    assert_eq!(
        setup.target.client().user_by_name("user02").unwrap()["active"],
        true
    );
}

#[test]
fn a_file_cut_short_is_recognised_while_other_operations_are_held() {
    let people = numbered(12);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply(&setup.target.url, "");
    assert!(setup.sync().1.contains("created 12,"));
    // Everyone's title cleared at once: held, and not approved.
    let untitled = directory(&people, &[]).replace("title: Engineer\n", "");
    setup.write(&untitled);
    assert!(setup.sync().1.contains("held 12:"));

    // Three hires are appended and provisioned (the clearing updates stay held)…
    let mut more = people.clone();
    more.extend((12..15).map(|i| (format!("user{i:02}"), i)));
    let grown = directory(&more, &[]).replace("title: Engineer\n", "");
    setup.write(&grown);
    let (_, out) = setup.sync();
    assert!(
        out.contains("created 3,") && out.contains("held 12:"),
        "{out}"
    );

    // …then the file is cut back to where it was: that is the last file read, cut short.
    setup.write(&untitled);
    let (_, out) = setup.sync();
    assert!(
        out.contains("disabled 0,") && out.contains("held 15:"),
        "{out}"
    );
    assert_eq!(
        setup.target.client().user_by_name("user14").unwrap()["active"],
        true
    );
}
