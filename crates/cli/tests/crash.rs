//! Crash safety: `sync` killed with SIGKILL at many points of a 10,000-user first cycle (whose
//! new users are created page by page as the read goes), then of a full read updating every
//! user after a mapping change (page by page too), then run to the end, leaves the target
//! exactly right: every user once, every group with its members, and nothing left to do. The same for incremental cycles read by key from a real
//! slapd: hires and changes in one batch, and hires, leavers and members joining groups read by
//! version.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::change::{add, delete, replace};
use common::*;
use scimbridge_testkit::slapd::{SYNC_DN, SYNC_PASSWORD, Slapd};

const USERS: usize = 10_000;

/// The crash tests time their kills: one at a time, so that another's load does not move them.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}
const GROUP_COUNT: usize = 5;

fn uid(i: usize) -> String {
    format!("user{i:05}")
}

/// 10,000 people, each in one of five groups.
fn directory() -> String {
    let people = (0..USERS).map(|i| {
        Entry::person(&uid(i))
            .with("cn", &format!("User {i}"))
            .with("sn", &i.to_string())
            .with("mail", &format!("{}@example.com", uid(i)))
            .guid(i)
    });
    let groups = (0..GROUP_COUNT).map(|g| {
        let members: Vec<String> = (g..USERS).step_by(GROUP_COUNT).map(uid).collect();
        Entry::group(&format!("group{g}"))
            .with("entryUUID", &format!("00000000-0000-0000-0001-{g:012}"))
            .members(&members)
    });
    ldif(people.chain(groups))
}

#[test]
fn killed_at_many_points_the_target_ends_exactly_right() {
    let _one = one_at_a_time();
    let ws = Workspace::new();
    ws.write_ldif(&directory());
    let target = ws.target("t0ken");
    let config = Config::ldif(&ws.ldif, &target.url, "t0ken")
        .channel_setting("max_threads", 4)
        .location("group_base_dn", GROUPS)
        .map("displayName", "cn")
        .map("workEmail", "mail");
    ws.apply(&config);
    let kills = killed_at_growing_delays(
        &ws,
        || {
            let events = std::fs::read_to_string(ws.data.join("audit.log"))
                .map_or(0, |log| log.lines().count());
            (target.client().users().len(), events)
        },
        |(users, _)| *users == USERS,
    );
    let seen: Vec<usize> = kills.iter().map(|(users, _)| *users).collect();
    // The kills interrupted cycles half way (the test would prove nothing otherwise).
    assert!(
        seen.iter().any(|n| *n > 0 && *n < USERS),
        "users in the target after each kill: {seen:?}"
    );
    eprintln!("(users in the target, audit events) after each kill: {kills:?}");
    // A cycle records its audit events a batch at a time as it goes, not at its end: what a
    // killed cycle did up to its last batch is in the audit log.
    assert!(
        kills
            .iter()
            .any(|(users, events)| *users < USERS && *events > 0),
        "(users in the target, audit events) after each kill: {kills:?}"
    );
    the_next_cycle_leaves_every_user_once_and_every_group_whole(&ws, &target);
    a_mapping_change_killed_at_many_points_updates_every_user_once(&ws, &target, config);
}

/// The display name now comes from sn: a full read updates every user as it reads them (a page
/// at a time). Killed at growing delays, then run to the end, it leaves every user once with
/// the new value, and nothing to do.
fn a_mapping_change_killed_at_many_points_updates_every_user_once(
    ws: &Workspace,
    target: &TargetProcess,
    config: Config,
) {
    ws.apply(&config.map("displayName", "sn"));
    let updated = || {
        let users = target.client().users();
        let updated = users
            .iter()
            .filter(|u| !u["displayName"].as_str().unwrap().starts_with("User "))
            .count();
        (users.len(), updated)
    };
    let seen = killed_at_growing_delays(ws, updated, |(_, n)| *n == USERS);
    eprintln!("(users, users updated) after each kill: {seen:?}");
    assert!(
        seen.iter().any(|(_, n)| *n > 0 && *n < USERS),
        "no kill landed among the updates: {seen:?}"
    );
    let out = ws.sync();
    assert!(out.contains("created 0, linked 0, "), "{out}");
    assert_eq!(updated(), (USERS, USERS), "{out}");
    let names: BTreeSet<String> = target.client().user_names().into_iter().collect();
    assert_eq!(names.len(), USERS);
    let out = ws.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(out.contains(&format!("(unchanged {USERS},")), "{out}");
}

/// Kills at growing delays land in every phase: the read, with the Bulk creates of each page of
/// new users made as it is read (a full read creates its new users as it reads them), record
/// saves, the groups. Each run gets a little further before it dies; the delays grow until one
/// run is let finish (`done` says so of its `progress`), so that a slow machine only takes more
/// kills. Returns the progress after each kill.
fn killed_at_growing_delays<T>(
    ws: &Workspace,
    progress: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    let mut delay_ms = 150.0_f64;
    while delay_ms < 30_000.0 && !seen.last().is_some_and(&done) {
        let sync = Running::start_quiet(&ws.data, &["sync", "app"]);
        std::thread::sleep(Duration::from_millis(delay_ms as u64));
        // SIGKILL: no chance to clean up.
        drop(sync);
        seen.push(progress());
        delay_ms *= 1.4;
    }
    seen
}

fn the_next_cycle_leaves_every_user_once_and_every_group_whole(
    ws: &Workspace,
    target: &TargetProcess,
) {
    let out = ws.sync();
    // Every user a killed cycle created was journaled before it was sent: it is recognised as
    // created by us, never linked as if someone else had made it.
    assert!(out.contains(", linked 0, "), "{out}");
    let listed = target.client().user_names();
    let names: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        USERS,
        "duplicates or missing users; last cycle: {out}"
    );
    assert_eq!(names.len(), USERS);
    let (status, page) = target.client().get("/Groups", &[("count", "100")]);
    assert_eq!(status, 200);
    let groups = page["Resources"].as_array().unwrap();
    assert_eq!(groups.len(), GROUP_COUNT, "{page}");
    for group in groups {
        assert_eq!(
            group["members"].as_array().map_or(0, Vec::len),
            USERS / GROUP_COUNT,
            "{}",
            group["displayName"]
        );
    }
    // Nothing is left to do.
    let out = ws.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(!out.contains("groups:"), "{out}");
}

/// An incremental cycle of a channel without groups reads its records by key: killed at many
/// points while it updates 500 users and creates 600 hires, then run to the end, it leaves
/// every user once with its new title, recognises its own creates, and has nothing left to do.
#[test]
fn an_incremental_cycle_read_by_key_killed_at_many_points_ends_exactly_right() {
    let _one = one_at_a_time();
    const STAFF: usize = 1_500;
    const PROMOTED: usize = 500;
    const HIRES: usize = 600;
    let ws = Workspace::new();
    let slapd = Slapd::start(ws.dir());
    let person = |i: usize| {
        Entry::person(&uid(i))
            .with("cn", &format!("User {i}"))
            .with("sn", &i.to_string())
            .with("title", "Engineer")
    };
    slapd.add(&changes((0..STAFF).map(person)));
    let target = ws.target("t0ken");
    let store = DataStore::ldap("directory", "openldap", &slapd.url, SYNC_DN, SYNC_PASSWORD);
    ws.apply(
        // One request per create: the kills land among them at any speed.
        &Config::reading(store, &target.url, "t0ken")
            .channel_setting("max_threads", 4)
            .target("use_bulk", false)
            .map("title", "title"),
    );
    assert!(ws.sync().contains(&format!("created {STAFF},")));

    slapd.add(&changes((STAFF..STAFF + HIRES).map(person)));
    let promoted: String = (0..PROMOTED)
        .map(|i| replace(&user_dn(&uid(i)), "title", "Lead"))
        .collect();
    slapd.modify(&promoted);
    let seen = killed_until(&ws, (STAFF + HIRES, PROMOTED), || {
        let users = target.client().users();
        let leads = users.iter().filter(|u| u["title"] == "Lead").count();
        (users.len(), leads)
    });
    eprintln!("(users, leads) in the target after each kill: {seen:?}");
    // Kills landed among the updates and among the creates (the test would prove nothing
    // otherwise).
    assert!(
        seen.iter()
            .any(|(_, leads)| *leads > 0 && *leads < PROMOTED),
        "no kill landed among the updates: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(users, _)| *users > STAFF && *users < STAFF + HIRES),
        "no kill landed among the creates: {seen:?}"
    );

    let out = ws.sync();
    assert!(out.contains("content-sync, incremental"), "{out}");
    assert!(out.contains(", linked 0, "), "{out}");
    let users = target.client().users();
    let names: BTreeSet<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        users.len(),
        STAFF + HIRES,
        "duplicates or missing users: {out}"
    );
    assert_eq!(names.len(), STAFF + HIRES);
    let leads = users.iter().filter(|u| u["title"] == "Lead").count();
    assert_eq!(leads, PROMOTED, "{out}");
    let out = ws.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(
        out.contains(&format!("(unchanged {},", STAFF + HIRES)),
        "{out}"
    );
}

/// An incremental cycle of a channel with groups, read by version: killed at many points while
/// it creates 300 hires (already members of a group before they came), disables 200 leavers
/// (whom the memberof overlay takes out of their groups without changing the groups' versions)
/// and adds 75 people to a second group, then run to the end, it leaves every group with
/// exactly its members, every user once, and nothing to read whole after.
#[test]
fn an_incremental_cycle_with_groups_killed_at_many_points_ends_exactly_right() {
    groups_killed_at_many_points("content-sync");
}

/// The same read by timestamps: the leavers are found by a sweep, which no longer lists a
/// leaver once it is disabled, so a kill before the group stage must not lose their removal.
#[test]
fn an_incremental_cycle_with_groups_by_timestamps_killed_at_many_points_ends_exactly_right() {
    groups_killed_at_many_points("timestamp");
}

fn groups_killed_at_many_points(algorithm: &str) {
    let _one = one_at_a_time();
    const STAFF: usize = 1_000;
    const HIRES: usize = 300;
    const LEAVERS: usize = 200;
    const JOINERS: usize = 100;
    const TEAMS: usize = 4;
    let ws = Workspace::new();
    let slapd = Slapd::start(ws.dir());
    let person = |i: usize| {
        Entry::person(&uid(i))
            .with("cn", &format!("User {i}"))
            .with("sn", &i.to_string())
    };
    let team = |t: usize| format!("team{t}");
    let hires: Vec<String> = (STAFF..STAFF + HIRES).map(uid).collect();
    slapd.add(&changes((0..STAFF).map(person).chain((0..TEAMS).map(
        |t| {
            let members: Vec<String> = (t..STAFF).step_by(TEAMS).map(uid).collect();
            Entry::group(&team(t)).members(&members)
        },
    ))));
    slapd.add(&changes([Entry::group("newcomers")
        .member(SYNC_DN)
        .members(&hires)]));
    let target = ws.target("t0ken");
    let store = DataStore::ldap("directory", "openldap", &slapd.url, SYNC_DN, SYNC_PASSWORD);
    ws.apply(
        &Config::reading(store, &target.url, "t0ken")
            .option("remove_user_action", "disable")
            .source("changed_users_algorithm", algorithm)
            // The leavers are deleted entries: timestamps find them by a sweep, every cycle here.
            .source("delete_sweep_minutes", 0)
            // A fifth of the staff leaves at once: the guard would hold it.
            .guard("enabled", false)
            .channel_setting("max_threads", 4)
            .target("use_bulk", false)
            .location("group_base_dn", GROUPS),
    );
    assert!(ws.sync().contains(&format!("created {STAFF},")));

    slapd.add(&changes((STAFF..STAFF + HIRES).map(person)));
    let leavers: String = (0..LEAVERS).map(|i| delete(&user_dn(&uid(i)))).collect();
    slapd.modify(&leavers);
    let joiners: String = (LEAVERS..LEAVERS + JOINERS)
        .filter(|i| i % TEAMS != 1)
        .map(|i| add(&group_dn(&team(1)), "member", &user_dn(&uid(i))))
        .collect();
    slapd.modify(&joiners);
    let seen = killed_until(&ws, (STAFF + HIRES, LEAVERS), || {
        let users = target.client().users();
        let inactive = users.iter().filter(|u| u["active"] == false).count();
        (users.len(), inactive)
    });
    eprintln!("(users, inactive) in the target after each kill: {seen:?}");
    assert!(
        seen.iter()
            .any(|(users, _)| *users > STAFF && *users < STAFF + HIRES),
        "no kill landed among the creates: {seen:?}"
    );

    let out = ws.sync();
    assert!(out.contains(", linked 0, "), "{out}");
    assert!(out.contains(&format!("{algorithm}, incremental")), "{out}");
    let users = target.client().users();
    let names: BTreeSet<&str> = users
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(users.len(), STAFF + HIRES, "duplicates or missing: {out}");
    assert_eq!(names.len(), STAFF + HIRES);
    // Every group holds exactly the active members the directory gives it.
    let mut expected: Vec<(String, Vec<String>)> = (0..TEAMS)
        .map(|t| {
            let mut members: Vec<String> = (LEAVERS..STAFF)
                .filter(|i| i % TEAMS == t || (t == 1 && *i < LEAVERS + JOINERS))
                .map(uid)
                .collect();
            members.sort();
            (team(t), members)
        })
        .collect();
    expected.push(("newcomers".into(), hires.clone()));
    expected.sort();
    let mut groups = target.client().groups();
    groups.sort();
    assert_eq!(groups, expected, "{out}");

    let out = ws.sync();
    assert!(
        out.contains("created 0, linked 0, updated 0, disabled 0, deleted 0, failed 0"),
        "{out}"
    );
    assert!(
        out.contains("incremental, 0 of 5 groups read whole"),
        "{out}"
    );
    assert!(!out.contains("groups:"), "{out}");
}

/// Kills `sync` at delays growing in small steps until `progress` (what the target holds: the
/// users created, and those of the second phase done) reads `done`. Each killed cycle keeps
/// what it settled, so the kills walk through the cycle whatever the machine's speed. Once the
/// first phase is all done and the second not begun, a run goes straight to the second: the
/// delays start short again, in smaller steps, so that kills land in it however fast it goes.
/// Returns the progress after each kill.
fn killed_until(
    ws: &Workspace,
    done: (usize, usize),
    progress: impl Fn() -> (usize, usize),
) -> Vec<(usize, usize)> {
    let mut seen: Vec<(usize, usize)> = Vec::new();
    let (mut delay_ms, mut step_ms) = (100, 150);
    while delay_ms <= 10_000 && seen.last() != Some(&done) {
        let sync = Running::start_quiet(&ws.data, &["sync", "app"]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        drop(sync);
        let now = progress();
        // Fewer users left to create than the last run created: the next coarse step could
        // finish the creates and the second phase at once, so the steps turn fine now.
        let gain = seen.last().map_or(0, |last| now.0.saturating_sub(last.0));
        let near_end = now.0 < done.0 && done.0 - now.0 <= gain;
        seen.push(now);
        if (now == (done.0, 0) || near_end) && step_ms != 50 {
            (delay_ms, step_ms) = (100, 50);
        } else {
            delay_ms += step_ms;
        }
    }
    seen
}
