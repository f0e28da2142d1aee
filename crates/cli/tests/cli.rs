//! The command line as a person and a script use it: output piped into a reader that stops
//! early, logs without colour codes where no terminal reads them, a plan that ends with its
//! totals, a password typed at a terminal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    assert!(plan.starts_with("channel staff:\n"), "{plan}");
    assert_eq!(plan.matches("staff").count(), 1, "{plan}");
    assert!(
        plan.ends_with(
            "\ndata store read with full-scan, full read\ntotal: create 3, unchanged 0\n"
        ),
        "{plan}"
    );

    ws.sync();
    ws.edit_ldif(|text| without_entry(text, &user_dn("ann")));
    let plan = ws.run(&["plan", "app"]);
    assert!(
        plan.ends_with("\ntotal: disable 1, unchanged 2\n"),
        "{plan}"
    );
}

#[test]
fn a_json_plan_is_an_object_of_each_channel_s_plan() {
    let (ws, _target) = three_people();
    let plan: serde_json::Value =
        serde_json::from_str(&ws.run(&["plan", "app", "--json"])).unwrap();
    let operations = plan["staff"]["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 3, "{plan}");
    assert!(operations.iter().all(|o| o["type"] == "create"), "{plan}");
    assert_eq!(plan.as_object().unwrap().len(), 1, "{plan}");
}

/// `scimbridge ARGS…` at a terminal: a pseudo-terminal made by util-linux's `script`, what it
/// shows collected by a thread, typed lines written to it.
struct AtTerminal {
    child: Child,
    keyboard: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl AtTerminal {
    fn start(data: &Path, args: &str) -> AtTerminal {
        let line = format!("{} --data-dir {} {args}", bin(), data.display());
        let mut child = Command::new("script")
            .args([
                "--quiet",
                "--return",
                "--flush",
                "--command",
                &line,
                "/dev/null",
            ])
            .env_remove("SCIMBRIDGE_ADMIN_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let keyboard = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let screen = Arc::new(Mutex::new(Vec::new()));
        let shown = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n @ 1..) = output.read(&mut buffer) {
                shown.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        AtTerminal {
            child,
            keyboard,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits for `prompt` to be shown (once more than `seen` times), then types `line`.
    fn answer(&mut self, prompt: &str, seen: usize, line: &str) {
        wait_until(Duration::from_secs(30), prompt, || {
            self.screen().matches(prompt).count() > seen
        });
        self.keyboard
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        // The reader thread may still hold the last bytes.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.screen())
    }
}

#[test]
fn a_password_typed_at_a_terminal_is_not_shown_and_is_asked_twice() {
    let ws = Workspace::new();
    let password = "correct horse battery";

    let mut terminal = AtTerminal::start(&ws.data, "admin password");
    terminal.answer("New password for \"administrator\": ", 0, password);
    terminal.answer("The same password again: ", 0, "correct horse batter");
    let (status, screen) = terminal.finish();
    assert!(!status.success(), "{screen}");
    assert!(
        screen.contains("the two passwords differ; nothing was changed"),
        "{screen}"
    );
    assert!(
        !screen.contains("correct horse"),
        "the password was echoed:\n{screen}"
    );

    let mut terminal = AtTerminal::start(&ws.data, "admin password");
    terminal.answer("New password for \"administrator\": ", 0, password);
    terminal.answer("The same password again: ", 0, password);
    let (status, screen) = terminal.finish();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("administrator \"administrator\": password set"),
        "{screen}"
    );
    assert!(
        !screen.contains(password),
        "the password was echoed:\n{screen}"
    );

    let service = Service::start(&ws.data);
    assert_eq!(service.sign_on(password).status().as_u16(), 303);
}

#[test]
fn bash_completes_commands_and_options_from_the_generated_script() {
    let ws = Workspace::new();
    let script = ws.run(&["completions", "bash"]);
    let completions_of = |words: &str| {
        let words: Vec<&str> = words.split(' ').collect();
        let program = format!(
            "{script}\nCOMP_WORDS=({words}); COMP_CWORD={cword}; _scimbridge scimbridge {current} {previous}; echo \"${{COMPREPLY[@]}}\"",
            words = words.join(" "),
            cword = words.len() - 1,
            current = words[words.len() - 1],
            previous = words[words.len() - 2],
        );
        let output = Command::new("bash")
            .args(["-c", &program])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", both(&output));
        stdout(&output).trim().to_owned()
    };
    assert_eq!(completions_of("scimbridge pl"), "plan");
    assert_eq!(completions_of("scimbridge plan --js"), "--json");
    for shell in ["zsh", "fish"] {
        let script = ws.run(&["completions", shell]);
        assert!(script.contains("quickstart"), "{shell}:\n{script}");
    }
}

#[test]
fn the_manual_pages_describe_every_command() {
    let ws = Workspace::new();
    let page = ws.run(&["man"]);
    assert!(page.starts_with(".ie"), "{page}");
    assert!(page.contains(".TH scimbridge 1"), "{page}");
    // Every command `--help` lists has its entry in the page.
    let help = ws.run(&["--help"]);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for command in commands {
        let entry = format!("scimbridge\\-{}(1)", command.replace('-', "\\-"));
        assert!(page.contains(&entry), "no {entry} in:\n{page}");
    }

    let dir = ws.path("man");
    ws.run(&["man", "--dir", &path_str(&dir)]);
    let plan = std::fs::read_to_string(dir.join("scimbridge-plan.1")).unwrap();
    assert!(plan.contains(r"\-\-json"), "{plan}");
    assert!(dir.join("scimbridge-admin-password.1").is_file());
}

#[test]
fn serve_on_a_fresh_machine_creates_its_data_directory_and_says_how_to_set_an_administrator() {
    let ws = Workspace::new();
    assert!(!ws.data.exists());
    let said = ws.path("serve.err");
    let service =
        Service::spawn(Service::command(&ws.data).stderr(std::fs::File::create(&said).unwrap()));
    assert!(ws.data.is_dir());
    let warnings = std::fs::read_to_string(&said).unwrap();
    assert_has(
        &warnings,
        &[
            &format!("data directory {} created", ws.data.display()),
            "warning: no administrator is set",
            "admin password` sets one",
        ],
    );
    let login = |console: &str| {
        reqwest::blocking::get(format!("{console}/login"))
            .unwrap()
            .text()
            .unwrap()
    };
    let page = login(&service.console());
    assert_has(
        &page,
        &["No administrator is set yet", "scimbridge admin password"],
    );
    // The data directory's path is for the operator at the machine, not for visitors.
    assert!(!page.contains(&path_str(&ws.data)), "{page}");

    ws.admin_password("correct horse battery");
    assert!(!login(&service.console()).contains("No administrator"));
}

#[test]
fn serve_picks_up_an_edit_of_an_ldif_file_at_once() {
    let (ws, target) = three_people();
    // An hour between scheduled cycles: only the file watch can bring the edit in time.
    let service = Service::start(&ws.data);
    service.process.read_until("app/staff: created 3, linked 0");
    service.process.wait_for_output("watching");
    ws.write_ldif(&people_named(&["ann", "ben", "cat", "dan"]));
    service.process.read_until("app/staff: created 1, linked 0");
    let users = target.client().users();
    assert!(users.iter().any(|u| u["userName"] == "dan"), "{users:?}");
}

#[test]
fn quickstart_leaves_nothing_that_a_later_serve_would_send_to_a_dead_target() {
    let ws = Workspace::new();
    let out = ws.run(&["quickstart", "--once"]);
    assert_has(
        &out,
        &[
            "the \"quickstart\" connection is now inactive",
            "To look at the target again:",
            &format!(
                "scimbridge --data-dir {} target serve --token-file {} &",
                ws.data.display(),
                ws.data.join("target-token").display()
            ),
        ],
    );

    let said = ws.path("serve.err");
    let service =
        Service::spawn(Service::command(&ws.data).stderr(std::fs::File::create(&said).unwrap()));
    // Long enough for a worker to start and fail against the dead port, were there one.
    std::thread::sleep(Duration::from_secs(2));
    let (_, printed) = service.process.stop();
    let errors = std::fs::read_to_string(&said).unwrap();
    assert!(
        !printed
            .iter()
            .any(|line| line.contains("quickstart/people")),
        "{printed:?}"
    );
    assert!(!errors.contains("error"), "{errors}");

    // The next quickstart takes it up again.
    let again = ws.run(&["quickstart", "--once"]);
    assert!(again.contains("quickstart/people: created 0"), "{again}");
}

#[test]
fn connections_and_data_stores_are_deactivated_and_deleted_from_the_command_line() {
    let (ws, _target) = three_people();
    ws.sync();

    let refused = ws.fail(&["connection", "delete", "app"]);
    assert_has(
        &refused,
        &[
            "connection \"app\" is active; deactivate it before deleting it",
            "scimbridge connection deactivate app",
        ],
    );
    let refused = ws.fail(&["data-store", "delete", "corp"]);
    assert!(
        refused.contains("data store \"corp\" is read by channel app/staff"),
        "{refused}"
    );

    let out = ws.run(&["connection", "deactivate", "app"]);
    assert!(out.contains("connection \"app\" (inactive"), "{out}");
    let (_, cells) = ws.channels_row("app");
    assert_eq!(cells[2..4], ["inactive", "(connection)"]);
    let out = ws.run(&["connection", "activate", "app"]);
    assert!(out.contains("connection \"app\" (active"), "{out}");
    ws.run(&["connection", "deactivate", "app"]);

    let out = ws.run(&["connection", "delete", "app"]);
    assert!(out.contains("connection \"app\": deleted"), "{out}");
    assert!(!ws.run(&["channels"]).contains("app "));
    assert!(
        ws.fail(&["sync", "app"])
            .contains("no connection named \"app\"")
    );
    let out = ws.run(&["data-store", "delete", "corp"]);
    assert!(out.contains("data store \"corp\": deleted"), "{out}");
    assert!(
        ws.fail(&["data-store", "delete", "corp"])
            .contains("no data store named \"corp\"")
    );
}

#[test]
fn activating_a_connection_checks_its_target_first() {
    let (ws, target) = three_people();
    ws.run(&["connection", "deactivate", "app"]);
    drop(target);
    let refused = ws.fail(&["connection", "activate", "app"]);
    assert!(refused.contains("nothing was saved"), "{refused}");
    let (_, cells) = ws.channels_row("app");
    assert_eq!(cells[2], "inactive");
    let out = ws.run(&["connection", "activate", "app", "--skip-check"]);
    assert!(out.contains("(active"), "{out}");
}

#[test]
fn channels_show_held_operations_and_a_target_found_down() {
    let (ws, target) = three_people();
    ws.sync();
    // The file read last time cut short: Cat's disable is held for approval.
    ws.write_ldif(&people_named(&["ann", "ben"]));
    ws.sync();
    let (table, cells) = ws.channels_row("app");
    assert!(table.contains("HELD"), "{table}");
    assert_eq!(
        cells[..7],
        ["app", "staff", "active", "3", "0", "0", "1"],
        "{table}"
    );

    drop(target);
    ws.write_ldif(&people_named(&["ann", "ben", "cat", "dan"]));
    ws.sync_expecting(4, &[]);
    let (table, cells) = ws.channels_row("app");
    assert_eq!(cells[2..5], ["active", "(target", "down)"], "{table}");
    assert!(table.contains("stopped: target unreachable"), "{table}");
}

#[test]
fn mapping_test_and_a_dry_run_take_a_user_as_sync_user_does_and_say_it_in_words() {
    let (ws, _target) = three_people();
    ws.sync();
    let by_dn = ws.run(&["mapping", "test", "app", "--entry", &user_dn("ben")]);
    assert!(by_dn.contains("\"userName\": \"ben\""), "{by_dn}");
    for who in ["BEN", guid(1).as_str()] {
        let image = ws.run(&["mapping", "test", "app", "--user", who]);
        assert_eq!(image, by_dn, "{who}");
    }
    let unknown = ws.fail(&["mapping", "test", "app", "--entry", "zed"]);
    assert!(
        unknown.contains("channel app/staff knows no user zed (give its DN, or the user name"),
        "{unknown}"
    );

    let dry = ws.run(&["sync", "app", "--user", "ben", "--dry-run"]);
    assert_eq!(
        dry.trim(),
        "channel app/staff: ben: nothing to send, the target user is already right"
    );
    ws.write_ldif(&people_named(&["ann", "ben", "cat", "dan"]));
    let dry = ws.run(&["sync", "app", "--user", &user_dn("dan"), "--dry-run"]);
    assert!(
        dry.starts_with("channel app/staff: would create dan: new in the source location"),
        "{dry}"
    );
}

#[test]
fn an_https_url_on_a_plain_http_port_is_named_as_such() {
    let ws = Workspace::new();
    let target = ws.target(TOKEN);
    ws.write_ldif(&people_named(&["ann"]));
    let https = target.url.replacen("http://", "https://", 1);
    let refused = ws.try_apply(&Config::ldif(&ws.ldif, &https, TOKEN), &[]);
    let err = stderr(&refused);
    assert!(!refused.status.success(), "{err}");
    assert_has(
        &err,
        &[
            "activation needs a working target",
            "target.scim_url says https:// but the server speaks plain HTTP on that port",
            "use http:// in the URL, or the server's TLS port",
        ],
    );
    assert!(!err.contains("nothing answers"), "{err}");
}
