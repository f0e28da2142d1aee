//! Nobody loses access by accident, whatever breaks: a directory file cut short or still being
//! written, two entries claiming one target user, a user whose update fails, mass changes on a
//! small channel, a target that is down. Each against the bundled target, run as its own process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use scimbridge_testkit::faults::FaultProxy;
use serde_json::{Value, json};

fn person(uid: &str, n: usize) -> Entry {
    Entry::person(uid)
        .with("cn", uid)
        .with("sn", uid)
        .with("mail", &format!("{uid}@example.com"))
        .with("title", "Engineer")
        .guid(n)
}

/// An LDIF directory: the people (uid, GUID number), then the groups (name, member uids), each
/// group's GUID made from its name.
fn directory(people: &[(String, usize)], groups: &[(String, Vec<String>)]) -> String {
    ldif(entries(people, groups))
}

/// The entries of [`directory`], for a test to add more.
fn entries(people: &[(String, usize)], groups: &[(String, Vec<String>)]) -> Vec<Entry> {
    let mut entries = vec![Entry::ou("people"), Entry::ou("groups")];
    entries.extend(people.iter().map(|(uid, n)| person(uid, *n)));
    entries.extend(groups.iter().map(|(cn, members)| {
        let n = cn.bytes().fold(0usize, |n, b| {
            (n * 131 + usize::from(b)) % 1_000_000_000_000
        });
        Entry::group(cn).group_guid(n).members(members)
    }));
    entries
}

fn numbered(count: usize) -> Vec<(String, usize)> {
    (0..count).map(|i| (format!("user{i:02}"), i)).collect()
}

/// Groups of these names and members.
fn groups(groups: &[(&str, &[String])]) -> Vec<(String, Vec<String>)> {
    groups
        .iter()
        .map(|(name, members)| ((*name).to_owned(), members.to_vec()))
        .collect()
}

/// A workspace and the bundled target.
struct Setup {
    ws: Workspace,
    target: TargetProcess,
}

impl std::ops::Deref for Setup {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

impl Setup {
    fn new(text: &str) -> Setup {
        let ws = Workspace::new();
        let target = ws.target("t0ken");
        ws.write_settled(text.as_bytes());
        Setup { ws, target }
    }

    /// The people and their groups into `url`, one request per user, one retry, five seconds
    /// for each answer.
    fn config(&self, url: &str) -> Config {
        Config::ldif(&self.ldif, url, "t0ken")
            .target("use_bulk", false)
            .target("max_retries", 1)
            .channel_setting("timeout", 5)
            .location("group_base_dn", GROUPS)
            .map("externalId", "entryUUID")
            .map("familyName", "sn")
            .map("workEmail", "mail")
            .map("title", "title")
    }

    /// The configuration into `url`, applied without checking it: a target that is down would
    /// fail the check.
    fn apply_to(&self, url: &str) {
        self.apply_unchecked(&self.config(url));
    }

    fn proxy(&self, rules: Value) -> FaultProxy {
        FaultProxy::start(&self.target.upstream(), &rules)
    }

    /// Writes the directory file as a finished export.
    fn write(&self, text: &str) {
        self.write_settled(text.as_bytes());
    }

    /// What a user checking the target sees: each user's attributes (without `meta`) and each
    /// group's member user names.
    fn target_state(&self) -> (BTreeMap<String, Value>, Vec<Group>) {
        let client = self.target.client();
        let users = client.users();
        let groups = client.groups_of(&users);
        let users = users
            .into_iter()
            .map(|mut user| {
                user.as_object_mut().unwrap().remove("meta");
                (user["userName"].as_str().unwrap().to_owned(), user)
            })
            .collect();
        (users, groups)
    }

    fn members(&self, group: &str) -> BTreeSet<String> {
        self.target.client().members(group).into_iter().collect()
    }
}

#[test]
fn a_directory_file_cut_anywhere_deprovisions_blanks_or_relinks_nobody() {
    let setup = Setup::new(SAMPLE);
    setup.apply_unchecked(
        &setup
            .config(&setup.target.url)
            .map_field("displayName", Field::attributes(&["displayName", "cn"])),
    );
    setup.sync_expecting(0, &["created 1000,"]);
    let before = setup.target_state();
    assert_eq!(before.1.len(), 20);
    let cuts = cut_points(SAMPLE);
    assert!(cuts.len() >= 35, "{cuts:?}");
    for cut in cuts {
        a_file_cut_changes_nothing(&setup, cut, &before);
    }
    the_whole_file_again_drops_what_was_held(&setup);
    a_file_still_being_written_is_read_once_whole(&setup);
}

/// Where to cut: inside a GUID value, at the end of a line inside an entry, right before and
/// right after the blank line that ends an entry; among the people and the groups.
fn cut_points(text: &str) -> Vec<usize> {
    let entry_starts: Vec<usize> = text.match_indices("\n\ndn: ").map(|(i, _)| i + 2).collect();
    let first_group = text.find("\n\ndn: cn=").unwrap() + 2;
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
    let mut cuts = vec![0, text.find("\n\n").unwrap() + 2, text.len() - 1];
    for &index in &chosen {
        let start = entry_starts[index];
        let end = entry_starts
            .get(index + 1)
            .copied()
            .unwrap_or(text.len() + 1);
        let entry = &text[start..end - 1];
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
        cuts.push(end.min(text.len()));
    }
    cuts.retain(|cut| *cut < text.len());
    cuts.sort();
    cuts.dedup();
    cuts
}

type TargetState = (BTreeMap<String, Value>, Vec<Group>);

/// The sample cut at `cut`: the cycle says something is wrong, and the target stays as it was.
fn a_file_cut_changes_nothing(setup: &Setup, cut: usize, before: &TargetState) {
    setup.write_settled(&SAMPLE.as_bytes()[..cut]);
    let (code, out) = setup.try_sync();
    assert!(
        code != Some(0) || out.contains("held "),
        "cut at {cut}: nothing said\n{out}"
    );
    let after = setup.target_state();
    assert!(
        after == *before,
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
            .filter(|group| !before.1.contains(group))
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    );
}

/// The whole file again: nothing to do, and what was held is dropped.
fn the_whole_file_again_drops_what_was_held(setup: &Setup) {
    setup.write(SAMPLE);
    let out = setup.sync_expecting(0, &["unchanged 1000,"]);
    assert!(!out.contains("held"), "{out}");
    assert!(setup.run(&["held", "app"]).contains("nothing held"));
}

/// A file still being written when the cycle starts: read once it is whole.
fn a_file_still_being_written_is_read_once_whole(setup: &Setup) {
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
    let (code, out) = setup.try_sync();
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
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 12,"));

    // The last two members leave the last group: the file is the old one cut short.
    let fewer = vec![("all".to_owned(), everyone[..10].to_vec())];
    setup.write(&directory(&people, &fewer));
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("held 1:"), "{out}");
    assert_eq!(setup.members("all").len(), 12);
    let held = setup.run(&["held", "app"]);
    assert_has(
        &held,
        &[
            "update group all",
            "looks cut short, or its last lines were deleted",
        ],
    );
    setup.run(&["approve", "app"]);
    let (_, out) = setup.try_sync();
    assert!(
        out.contains("groups: created 0, linked 0, updated 1,"),
        "{out}"
    );
    assert_eq!(setup.members("all").len(), 10);
    // Settled: the shorter file is now the one remembered.
    let (_, out) = setup.try_sync();
    assert!(!out.contains("held"), "{out}");
}

#[test]
fn two_entries_never_share_one_target_user() {
    let mut people = numbered(3);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 3,"));
    let before = setup.target.client().user_by_name("user01").unwrap();

    // A second active entry with user01's userName (another DN, another GUID).
    let copy = person("user01", 41).at(&user_dn("user01-copy"));
    setup.write(&ldif(entries(&people, &[]).into_iter().chain([copy])));
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("failed 1 "), "{out}");
    assert!(
        out.contains(&format!(
            "userName user01 is also the userName of uid=user01,{PEOPLE}"
        )),
        "{out}"
    );
    let after = setup.target.client().user_by_name("user01").unwrap();
    assert_eq!(after["externalId"], before["externalId"]);
    assert_eq!(setup.target.client().users().len(), 3);

    // The copy goes: user01 keeps its account. Then user01 goes: disabled, as it should be.
    setup.write(&directory(&people, &[]));
    let (_, out) = setup.try_sync();
    assert!(out.contains("disabled 0,"), "{out}");
    assert_eq!(
        setup.target.client().user_by_name("user01").unwrap()["active"],
        true
    );
    people.remove(1);
    setup.write(&directory(&people, &[]));
    let (_, out) = setup.try_sync();
    assert!(out.contains("disabled 1,"), "{out}");

    // Two newcomers with one userName (in any case) in one cycle: one is created, one fails.
    let twins = [
        person("twin", 50),
        person("TWIN", 51).at(&user_dn("twin-2")),
    ];
    setup.write(&ldif(entries(&people, &[]).into_iter().chain(twins)));
    let (_, out) = setup.try_sync();
    assert_has(
        &out,
        &[
            "created 1,",
            "failed 1 ",
            "userName TWIN is also the userName of uid=twin,",
        ],
    );
    assert_eq!(setup.target.client().users().len(), 4);
}

/// A user renamed to the userName of a newcomer read in the same cycle: the newcomer is created
/// as the read goes and keeps the name; the rename fails alone, naming it, and nothing is sent
/// for it (the target would refuse it, or keep two users with one name).
#[test]
fn a_rename_to_a_name_a_newcomer_took_fails_alone() {
    let people = numbered(3);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 3,"));

    // user01 becomes "fresh" (same entry, same DN); a newcomer is "fresh" too.
    let renamed = person("fresh", 1).at(&user_dn("user01"));
    let newcomer = person("fresh", 60);
    let mut entries = entries(&people, &[]);
    entries[3] = renamed; // after the two OUs and user00
    entries.push(newcomer);
    setup.write(&ldif(entries));
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(3), "{out}");
    assert_has(
        &out,
        &[
            "created 1, linked 0, updated 0,",
            "failed 1 ",
            "userName fresh is also the userName of uid=fresh,",
        ],
    );
    let names = setup.target.client().user_names();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "fresh").count(),
        1,
        "{names:?}"
    );
    assert!(names.contains(&"user01".to_owned()), "{names:?}");
}

#[test]
fn a_user_found_by_work_email_that_another_entry_owns_is_not_linked() {
    let people = numbered(2);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply_unchecked(
        &setup
            .config(&setup.target.url)
            .target("unique_user_identifier", "workEmail"),
    );
    let (_, out) = setup.try_sync();
    assert!(out.contains("created 2,"), "{out}");

    // A newcomer whose mail is user00's: the look-up by email finds user00's account.
    let newcomer = person("newcomer", 60).set("mail", "user00@example.com");
    setup.write(&ldif(entries(&people, &[]).into_iter().chain([newcomer])));
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(&format!(
            "belongs to another entry of this channel, uid=user00,{PEOPLE}"
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
    let teams = groups(&[
        ("all", &everyone),
        ("devs", &everyone[..4]),
        ("zz-last", &[]),
    ]);
    let setup = Setup::new(&directory(&people, &teams));
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 8,"));
    let id = setup.target.client().id_of("user01");
    for status in [400, 500] {
        let text = directory(&people, &teams);
        let edited = with_value(
            &text,
            &user_dn("user01"),
            "title",
            &format!("Lead {status}"),
        );
        a_user_whose_updates_are_refused_stays_a_member(&setup, &id, status, &edited);
    }

    // Out of a group in the directory while failing: out of it in the target too.
    let proxy = refusing_updates(&setup, &id, 400);
    setup.apply_to(&proxy.url("/scim/v2"));
    let devs = [&everyone[0], &everyone[2], &everyone[3]].map(String::clone);
    let moved = groups(&[("all", &everyone), ("devs", &devs), ("zz-last", &[])]);
    let text = directory(&people, &moved);
    setup.write(&with_value(
        &text,
        &user_dn("user01"),
        "title",
        "Lead again",
    ));
    let (_, out) = setup.try_sync();
    assert!(out.contains("failed 1 "), "{out}");
    assert!(!setup.members("devs").contains("user01"));
    assert!(setup.members("all").contains("user01"));
    drop(proxy);

    // 5 of 8 leave at once: the disables are held, and so are their memberships.
    setup.apply_to(&setup.target.url);
    setup.write(&directory(&people[..3], &moved));
    let (_, out) = setup.try_sync();
    assert_has(&out, &["disabled 0,", "held 5:"]);
    assert_eq!(setup.members("all").len(), 8);
    let plan = setup.run(&["plan", "app"]);
    assert!(!plan.contains("to remove"), "{plan}");
    // Approved: disabled, and only then out of their groups.
    setup.run(&["approve", "app"]);
    let (_, out) = setup.try_sync();
    assert!(out.contains("disabled 5,"), "{out}");
    assert_eq!(
        setup.members("all"),
        BTreeSet::from(["user00".into(), "user01".into(), "user02".into()])
    );
}

/// The target answers every update of the user `id` with `status`.
fn refusing_updates(setup: &Setup, id: &str, status: u16) -> FaultProxy {
    setup.proxy(
        json!([{"method": "PATCH", "path": format!("/scim/v2/Users/{id}"), "count": -1,
                        "fault": "status", "status": status}]),
    )
}

/// user01 changes in `directory`, and the target refuses its update with `status`: it fails, is
/// retried and fails again, then waits for its retry: a member all along.
fn a_user_whose_updates_are_refused_stays_a_member(
    setup: &Setup,
    id: &str,
    status: u16,
    directory: &str,
) {
    let proxy = refusing_updates(setup, id, status);
    setup.apply_to(&proxy.url("/scim/v2"));
    setup.write(directory);
    let mut waited = false;
    for _ in 0..3 {
        let (code, out) = setup.try_sync();
        assert_eq!(code, Some(3), "{out}");
        waited |= out.contains("waiting to be retried 1");
        assert!(out.contains("failed 1 ") || waited, "{out}");
        let plan = setup.run(&["plan", "app"]);
        assert!(!plan.contains("to remove"), "{plan}");
        assert!(setup.members("all").contains("user01"));
        assert!(setup.members("devs").contains("user01"));
    }
    assert!(waited);
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
    setup.apply_to(&setup.target.url);
    let (_, out) = setup.try_sync();
    assert!(out.contains("created 50,"), "{out}");
    let before = setup.target_state();

    // A mapping typo clears everyone's email: held (the count rule, 500, would not).
    setup.apply_unchecked(&setup.config(&setup.target.url).map("workEmail", "mial"));
    let (_, out) = setup.try_sync();
    assert_has(&out, &["updated 0,", "held 50:"]);
    assert_eq!(setup.target_state(), before);
    let held = setup.run(&["held", "app"]);
    assert!(
        held.contains("50 of 50 users would lose emails at once (100%), more than guard.max_blanked_percent 10%"),
        "{held}"
    );
    setup.apply_to(&setup.target.url);
    let (_, out) = setup.try_sync();
    assert!(!out.contains("held"), "{out}");

    // 8 of 14 groups leave the directory (not the last ones): held.
    let kept: Vec<(String, Vec<String>)> = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| !(2..10).contains(i))
        .map(|(_, g)| g.clone())
        .collect();
    setup.write(&directory(&people, &kept));
    let (_, out) = setup.try_sync();
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
    let (_, out) = setup.try_sync();
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
    let (_, out) = setup.try_sync();
    assert!(!out.contains("held"), "{out}");
    assert_eq!(setup.members("big").len(), 11);
}

/// A mapping change touches every user: the updates that blank nothing and rename nobody are
/// applied page by page as the read goes (the cycle holds no directory's worth of updates), the
/// rest is decided by the plan as before; a change that sends nothing only brings the records
/// up to date, and is counted unchanged by `plan` and the cycle alike.
#[test]
fn a_mapping_change_that_touches_every_user_is_applied_as_the_read_goes() {
    let people = numbered(50);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 50,"));

    // The title now comes from cn; in the same cycle user04 is renamed and user05 loses its
    // mail (one user in fifty: under the guard's limits).
    let mut renamed = directory(&people, &[]);
    renamed = renamed
        .replace("uid=user04,", "uid=user04b,")
        .replace("uid: user04\n", "uid: user04b\n");
    renamed = renamed.replace("mail: user05@example.com\n", "");
    setup.write(&renamed);
    let config = setup.config(&setup.target.url).map("title", "cn");
    setup.apply_unchecked(&config);
    let plan = setup.run(&["plan", "app"]);
    assert!(plan.contains("total: update 50, unchanged 0"), "{plan}");
    assert!(plan.contains("update user17:"), "{plan}");
    let (_, out) = setup.try_sync();
    assert_has(
        &out,
        &["created 0,", "updated 50,", "failed 0 (unchanged 0,"],
    );
    assert!(!out.contains("held"), "{out}");
    let users = setup.target.client().users();
    assert_eq!(users.len(), 50);
    for user in &users {
        let name = user["userName"].as_str().unwrap();
        let cn = if name == "user04b" { "user04" } else { name };
        assert_eq!(user["title"], cn, "{user}");
        assert_eq!(user.get("emails").is_some(), name != "user05", "{user}");
    }
    assert!(setup.target.client().user_by_name("user04").is_none());

    // A mapping of an attribute no entry has: every user's fingerprint moves, nothing to send.
    setup.apply_unchecked(&config.map("nickName", "roomNumber"));
    let plan = setup.run(&["plan", "app"]);
    assert!(plan.contains("total: unchanged 50"), "{plan}");
    let (_, out) = setup.try_sync();
    assert_has(&out, &["updated 0,", "(unchanged 50,"]);
    let plan = setup.run(&["plan", "app"]);
    assert!(plan.contains("total: unchanged 50"), "{plan}");
}

/// A directory whose users are all replaced by others (a source pointed at the wrong place):
/// the new users are created as the read goes, and the leavers are still weighed against the
/// users the channel had, not with the new ones: every one of them is held.
#[test]
fn users_created_as_the_read_goes_do_not_make_leavers_look_few() {
    let setup = Setup::new(&directory(&numbered(10), &[]));
    let config = setup
        .config(&setup.target.url)
        .option("remove_user_action", "disable")
        .guard("max_deprovisions", 1000)
        .guard("max_deprovision_percent", 60)
        .guard("percent_from", 5);
    setup.apply(&config);
    assert!(setup.try_sync().1.contains("created 10,"));

    let others: Vec<(String, usize)> = (0..10).map(|i| (format!("other{i:02}"), 100 + i)).collect();
    setup.write(&directory(&others, &[]));
    let (_, out) = setup.try_sync();
    assert_has(&out, &["created 10,", "disabled 0,", "held 10:"]);
    let held = setup.run(&["held", "app"]);
    assert!(held.contains("10 of 10 users"), "{held}");
    let active = setup
        .target
        .client()
        .users()
        .iter()
        .filter(|u| u["active"] == true)
        .count();
    assert_eq!(active, 20);
}

#[test]
fn a_target_that_is_down_stops_the_cycle_and_counts_against_no_record() {
    let people = numbered(30);
    let setup = Setup::new(&directory(&people, &[]));
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 30,"));
    let promoted = directory(&people, &[]).replace("title: Engineer", "title: Senior Engineer");
    setup.write(&promoted);

    let unreachable = unreachable();
    let refusing = setup.proxy(json!([{"count": -1, "fault": "status", "status": 500}]));
    let cases = [
        (
            unreachable.clone(),
            "t0ken",
            "nothing answers at target.scim_url",
        ),
        (
            setup.target.url.clone(),
            "wrong",
            "the target refused the credentials",
        ),
        (
            refusing.url("/scim/v2"),
            "t0ken",
            "the target answered with an error",
        ),
    ];
    for (url, token, why) in cases {
        setup.apply_unchecked(&setup.config(&url).bearer(token));
        let (code, out) = setup.try_sync();
        assert_eq!(code, Some(4), "{out}");
        assert!(out.contains(&format!("target unreachable: {why}")), "{out}");
        assert!(out.contains("failed 0 "), "{out}");
        // One reason, not a line per record.
        assert!(out.lines().count() < 8, "{out}");
        let channels = setup.run(&["channels"]);
        assert!(channels.contains("target unreachable"), "{channels}");
        // One user on demand: the same verdict, nothing counted.
        let one = setup.try_run(&["sync", "app", "--user", "user00"]);
        let printed = stdout(&one);
        assert_eq!(one.status.code(), Some(4), "{printed}");
        assert!(
            printed.contains(&format!("target unreachable: {why}")),
            "{printed}"
        );
    }

    // Back up: the next cycle does everything at once, nothing waits for a retry.
    setup.apply_to(&setup.target.url);
    let (code, out) = setup.try_sync();
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
}

const PASSWORD: &str = "correct horse battery staple";

/// A SCIM base URL where nothing answers.
fn unreachable() -> String {
    format!(
        "http://127.0.0.1:{}/scim/v2",
        scimbridge_testkit::free_port()
    )
}

#[test]
fn the_service_shows_a_target_that_is_down_in_its_status_metrics_and_console() {
    let setup = Setup::new(&directory(&numbered(5), &[]));
    setup.apply_to(&unreachable());
    setup.admin_password(PASSWORD);
    let created = setup.run(&["admin", "token", "create", "monitoring"]);
    let token = created
        .split_whitespace()
        .find(|word| word.len() >= 32)
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let service = Service::start(&setup.data);
    let get = |path: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", service.root))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let mut status = Value::Null;
    wait_until(Duration::from_secs(60), "a cycle ends", || {
        status = serde_json::from_str(&get("/api/connections/app/status")).unwrap();
        let last = &status["channels"][0]["lastCycle"];
        !last.is_null() && !last["finishedAt"].is_null()
    });
    let metrics = get("/metrics");
    // The console's dashboard, as the administrator sees it.
    let dashboard = no_redirects()
        .get(format!("{}/connections/app", service.console()))
        .header("cookie", service.session_cookie(PASSWORD))
        .send()
        .unwrap()
        .text()
        .unwrap();
    drop(service);
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
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 3,"));
    let before = setup.target.client().user_by_name("user01").unwrap();

    // user01 leaves: disabled, out of the group.
    let staying = vec![people[0].clone(), people[2].clone()];
    let without = vec![(
        "all".to_owned(),
        vec![everyone[0].clone(), everyone[2].clone()],
    )];
    setup.write(&directory(&staying, &without));
    let (_, out) = setup.try_sync();
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
            "create user01: new in the source location; takes over the disabled account of uid=user01,{PEOPLE}"
        )),
        "{plan}"
    );
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created 0, linked 1,"), "{out}");
    let after = setup.target.client().user_by_name("user01").unwrap();
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["active"], true);
    assert_eq!(after["externalId"], "00000000-0000-0000-0000-000000000041");
    assert!(setup.members("all").contains("user01"));
    assert_eq!(setup.target.client().users().len(), 3);
    // Settled: one record for the account, nothing more to do.
    let (_, out) = setup.try_sync();
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
    let proxy = setup.proxy(json!([{"skip": 5, "count": -1, "fault": "status", "status": 500}]));
    setup.apply_unchecked(
        &setup
            .config(&proxy.url("/scim/v2"))
            .target("use_bulk", true),
    );
    let (code, out) = setup.try_sync();
    assert_eq!(code, Some(4), "{out}");
    assert_has(
        &out,
        &[
            "created 200,",
            "target unreachable: the target answered with an error",
            "100 operations not sent",
        ],
    );
    // It stopped after a few failed requests, not after trying each remaining user.
    let faults = proxy.stats()["faults"];
    assert!(faults <= 8, "{faults} requests failed: {:?}", proxy.stats());
    drop(proxy);

    setup.apply_to(&setup.target.url);
    let (code, out) = setup.try_sync();
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
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 6,"));
    let whole = directory(&people, &[]);

    // Cut before user05's entry: user05 is not taken for a leaver.
    let cut = &whole[..whole.find("dn: uid=user05").unwrap()];
    setup.write(cut);
    let output = setup.try_run(&["sync", "app", "--user", "user05"]);
    let printed = both(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert_has(
        &printed,
        &["looks cut short", "nothing is written on demand"],
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
    setup.apply_to(&setup.target.url);
    assert!(setup.try_sync().1.contains("created 12,"));
    // Everyone's title cleared at once: held, and not approved.
    let untitled = directory(&people, &[]).replace("title: Engineer\n", "");
    setup.write(&untitled);
    assert!(setup.try_sync().1.contains("held 12:"));

    // Three hires are appended and provisioned (the clearing updates stay held)…
    let mut more = people.clone();
    more.extend((12..15).map(|i| (format!("user{i:02}"), i)));
    let grown = directory(&more, &[]).replace("title: Engineer\n", "");
    setup.write(&grown);
    let (_, out) = setup.try_sync();
    assert_has(&out, &["created 3,", "held 12:"]);

    // …then the file is cut back to where it was: that is the last file read, cut short.
    setup.write(&untitled);
    let (_, out) = setup.try_sync();
    assert_has(&out, &["disabled 0,", "held 15:"]);
    assert_eq!(
        setup.target.client().user_by_name("user14").unwrap()["active"],
        true
    );
}
