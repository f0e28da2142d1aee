//! What ships to run scimbridge as a service: the systemd unit, the container image's commands,
//! the Grafana dashboard. Each is checked against the real binary: the unit by
//! `systemd-analyze verify` and by running its command, the image's CMD and HEALTHCHECK by
//! running them (no container engine runs here), the dashboard's queries against the metrics a
//! running service exposes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const TOKEN: &str = "t0ken";

fn repository_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repository_file(name)).unwrap()
}

/// `health --url URL`, whatever its outcome.
fn health(url: &str) -> std::process::Output {
    Command::new(bin())
        .args(["health", "--url", url, "--timeout", "2"])
        .output()
        .unwrap()
}

#[test]
fn the_systemd_unit_verifies_and_its_command_serves() {
    let unit = read("deploy/scimbridge.service");
    let dir = temp_dir();
    // The unit's binary path, pointed at the binary under test.
    let local = unit.replace("/usr/local/bin/scimbridge", bin());
    let path = dir.path().join("scimbridge.service");
    std::fs::write(&path, &local).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{}", both(&verified));
    assert_eq!(both(&verified), "", "systemd-analyze had remarks");
    for setting in [
        "ProtectSystem=strict",
        "StateDirectory=scimbridge",
        "NoNewPrivileges=yes",
        "User=scimbridge",
    ] {
        assert!(unit.contains(setting), "no {setting}");
    }

    // Its command, with its environment, on a port of the system's choosing.
    let exec = local
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap()
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let data = dir.path().join("state");
    let service = Service::spawn(
        Command::new(words[0])
            .args(&words[1..])
            .env("SCIMBRIDGE_DATA_DIR", &data),
    );
    assert!(data.join("state.db").is_file());
    let answer = health(&format!("{}/healthz", service.root));
    assert!(answer.status.success(), "{}", both(&answer));
    assert_eq!(stdout(&answer), "ok\n");
}

#[test]
fn the_container_image_s_command_serves_and_its_health_check_tells_up_from_down() {
    let dockerfile = read("Dockerfile");
    // A JSON-array instruction: the last line that starts with `prefix`.
    let json_array = |prefix: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .map(str::trim)
            .rfind(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in the Dockerfile"));
        let array = &line[line.find('[').unwrap()..];
        serde_json::from_str(array).unwrap()
    };
    assert_eq!(json_array("ENTRYPOINT "), ["scimbridge"]);
    let cmd = json_array("CMD [\"serve\"");
    // HEALTHCHECK's command, on the line after the instruction.
    let health_check = json_array("CMD [\"scimbridge\", \"health\"");
    assert!(dockerfile.contains("USER scimbridge"));
    assert!(dockerfile.contains("VOLUME [\"/data\"]"));

    let data = temp_dir();
    let args: Vec<String> = cmd
        .iter()
        .map(|a| a.replace("0.0.0.0:9464", "127.0.0.1:0"))
        .collect();
    let service = Service::spawn(
        Command::new(bin())
            .args(&args)
            .env("SCIMBRIDGE_DATA_DIR", data.path()),
    );
    let port = service.root.rsplit(':').next().unwrap();
    let check_args: Vec<String> = health_check[1..]
        .iter()
        .map(|a| a.replace(":9464", &format!(":{port}")))
        .collect();
    let up = Command::new(bin()).args(&check_args).output().unwrap();
    assert!(up.status.success(), "{}", both(&up));

    let (_, _) = service.process.stop();
    let down = Command::new(bin()).args(&check_args).output().unwrap();
    assert!(!down.status.success());
    assert!(
        stderr(&down).contains("the service does not answer at"),
        "{}",
        both(&down)
    );
}

/// Every `scimbridge_…` series a query of the dashboard names.
fn series_in(dashboard: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (at, _) in expr.match_indices("scimbridge_") {
                let name: String = expr[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[test]
fn every_query_of_the_grafana_dashboard_names_series_the_service_exposes() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana-dashboard.json")).unwrap();
    let series = series_in(&dashboard);
    assert!(series.len() >= 10, "{series:?}");

    let ws = Workspace::new();
    let target = ws.target(TOKEN);
    ws.write_ldif(&people_named(&["ann", "ben"]));
    ws.apply(&Config::ldif(&ws.ldif, &target.url, TOKEN));
    let token = ws.api_token("prometheus");
    let service = Service::start(&ws.data);
    service.process.read_until("app/staff: created 2");
    // A change seen by the file watch fills the change-to-target histogram too.
    ws.write_ldif(&people_named(&["ann", "ben", "cat"]));
    service.process.read_until("app/staff: created 1");
    let metrics = reqwest::blocking::Client::new()
        .get(format!("{}/metrics", service.root))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in &series {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "the dashboard queries {name}, which /metrics does not have:\n{metrics}"
        );
    }
    for label in [
        "channel=\"app/staff\"",
        "type=\"user-create\"",
        "success=\"true\"",
        "outcome=\"completed\"",
    ] {
        assert!(metrics.contains(label), "no {label} in:\n{metrics}");
    }
}

#[test]
fn the_licence_file_is_the_licence_cargo_toml_names() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""), "{manifest}");
    let licence = read("LICENSE");
    assert!(licence.contains("Apache License"));
    assert!(licence.contains("Version 2.0, January 2004"));
    assert!(read("CHANGELOG.md").starts_with("# Changelog"));
}
