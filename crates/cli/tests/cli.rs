//! The command line as a person and a script use it: output piped into a reader that stops
//! early, logs without colour codes where no terminal reads them, a plan that ends with its
//! totals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use common::*;

const TOKEN: &str = "t0ken";

/// Ann, Ben and Cat in the directory; a connection `app` to an empty bundled target.
fn three_people() -> (Workspace, TargetProcess) {
    let ws = Workspace::new();
    let target = ws.target(TOKEN);
    ws.write_ldif(&people_named(&["ann", "ben", "cat"]));
    ws.apply(&Config::ldif(&ws.ldif, &target.url, TOKEN));
    (ws, target)
}

#[test]
fn a_plan_piped_into_a_reader_that_stops_early_ends_quietly() {
    let (ws, _target) = three_people();
    let mut plan = command(&ws.data, &["plan", "app"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader has gone before the first line is written, as `| head -0` would.
    drop(plan.stdout.take());
    let output = plan.wait_with_output().unwrap();
    let said = stderr(&output);
    assert!(output.status.success(), "{:?}\n{said}", output.status);
    assert!(!said.contains("panicked"), "{said}");
}

#[test]
fn logs_read_by_no_terminal_carry_no_colour_codes() {
    let (ws, _target) = three_people();
    let output = ws.try_run(&["-vv", "sync", "app"]);
    let logs = stderr(&output);
    assert!(output.status.success(), "{}", both(&output));
    assert!(logs.contains("INFO"), "debug logs expected:\n{logs}");
    assert!(!logs.contains('\u{1b}'), "colour codes in:\n{logs:?}");
}

#[test]
fn a_plan_names_each_channel_once_and_ends_with_its_totals() {
    let (ws, _target) = three_people();
    let plan = ws.run(&["plan", "app"]);
    assert!(
        plan.starts_with("channel staff (data store read with "),
        "{plan}"
    );
    assert_eq!(plan.matches("staff").count(), 1, "{plan}");
    assert!(plan.ends_with("\ntotal: create 3, unchanged 0\n"), "{plan}");

    ws.sync();
    ws.edit_ldif(|text| without_entry(text, &user_dn("ann")));
    let plan = ws.run(&["plan", "app"]);
    assert!(
        plan.ends_with("\ntotal: disable 1, unchanged 2\n"),
        "{plan}"
    );
}
