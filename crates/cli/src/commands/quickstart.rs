//! `scimbridge quickstart`: the sample directory provisioned into the bundled target, end to end,
//! then every saved edit of the directory file provisioned within seconds.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rand::RngCore;
use scimbridge_engine::source::ldif::file_stamp;
use scimbridge_model::config::CONFIG_VERSION;
use scimbridge_model::{
    AuthenticationMethod, Channel, ConfigFile, Connection, DataStore, DataStoreKind, FieldMapping,
    ProvisioningOptions, ScimField, Secret, SourceLocation, SourceSettings, TargetSettings,
};
use scimbridge_target::{BASE_PATH, ScimTarget, TargetConfig};

use crate::commands::sync::{print_reports, sync_connection};
use crate::commands::target::shutdown_signal;
use crate::context::{DataDir, create_data_dir, write_private};
use crate::ops::configure::{ActivationCheck, save_configuration, set_active};
use crate::output::outln;
use crate::progress::BarProgress;

/// The sample company directory: 1,000 people and 20 groups.
const SAMPLE_DIRECTORY: &str = include_str!("../../../../examples/directory.ldif");

pub const CONNECTION: &str = "quickstart";
const DATA_STORE: &str = "sample-directory";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exit after the first cycle instead of following edits of the directory file.
    #[arg(long)]
    once: bool,
}

pub async fn run(data_dir: &Path, args: Args) -> Result<ExitCode> {
    create_data_dir(data_dir)?;
    let data_dir = std::path::absolute(data_dir)?;
    let ldif = data_dir.join("directory.ldif");
    if ldif.exists() {
        outln!(
            "Directory: {} (your copy; delete it to get the sample back)",
            ldif.display()
        );
    } else {
        write_private(&ldif, SAMPLE_DIRECTORY.as_bytes())?;
        outln!(
            "Directory: {} (sample: 1,000 people, 20 groups)",
            ldif.display()
        );
    }
    let token_file = data_dir.join("target-token");
    let token = read_or_create_token(&token_file)?;

    // The bundled target, in-process, on a free loopback port.
    let target = ScimTarget::open(TargetConfig {
        database_path: data_dir.join("target.db"),
        bearer_token: Some(token),
        ..TargetConfig::default()
    })
    .await
    .context("cannot open the bundled target's database")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let url = format!("http://{}{BASE_PATH}", listener.local_addr()?);
    let (stop_target, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(target.serve(listener, async {
        let _ = stopped.await;
    }));
    outln!(
        "Target:    {url} (bundled SCIM 2.0 service, bearer token in {})",
        token_file.display()
    );

    let config = quickstart_config(&ldif, &url, &token_file);
    let config_file = data_dir.join("quickstart.toml");
    let text = format!(
        "# Written by `scimbridge quickstart` on each run; copy it to start your own configuration.\n{}",
        config.to_toml()?
    );
    write_private(&config_file, text.as_bytes())?;
    outln!("Config:    {}", config_file.display());

    let dir = DataDir::open(&data_dir, true).await?;
    save_configuration(&dir.store, config, &data_dir, ActivationCheck::Target).await?;
    let outcome = provision_then_follow(&dir, &url, &ldif, &token_file, args.once).await;
    // Its target stops with quickstart: a later `serve` in this data directory must not keep
    // sending to a dead port. The next quickstart activates it again.
    let deactivated = set_active(&dir.store, CONNECTION, false, ActivationCheck::Skip).await;
    let _ = stop_target.send(());
    server
        .await
        .context("the bundled target stopped abnormally")??;
    deactivated?;
    let code = outcome?;
    outln!();
    outln!(
        "The bundled target stopped with quickstart; the \"{CONNECTION}\" connection is now inactive, so that \
         a later `scimbridge serve` leaves it alone (the next quickstart activates it again)."
    );
    outln!("To look at the target again:");
    outln!(
        "  scimbridge --data-dir {} target serve --token-file {} &",
        data_dir.display(),
        token_file.display()
    );
    outln!(
        "  curl -s -H \"Authorization: Bearer $(cat {})\" 'http://127.0.0.1:8080{BASE_PATH}/Users?count=2'",
        token_file.display()
    );
    Ok(code)
}

/// The first cycle, then (unless `once`) a cycle after each edit of the directory file until
/// Ctrl-C or SIGTERM; the exit code of the first cycle.
async fn provision_then_follow(
    dir: &DataDir,
    url: &str,
    ldif: &Path,
    token_file: &Path,
    once: bool,
) -> Result<ExitCode> {
    let connection = dir.connection(CONNECTION).await?;
    outln!();
    // Ctrl-C during the first cycle ends it like a crash would (the journal resolves what was
    // in flight), and still leaves the connection inactive on the way out.
    let progress = BarProgress::new();
    let reports = tokio::select! {
        reports = sync_connection(dir, &connection, &progress) => reports?,
        _ = shutdown_signal() => {
            outln!("Stopped during the first cycle; the next run finishes it.");
            return Ok(ExitCode::from(130));
        }
    };
    let code = print_reports(&reports);

    if !once {
        outln!();
        outln!("What to try next:");
        outln!("  * Look at the target:");
        outln!(
            "      curl -s -H \"Authorization: Bearer $(cat {})\" '{url}/Users?count=2'",
            token_file.display()
        );
        outln!(
            "  * Edit {} (change a title, delete an entry) and save:",
            ldif.display()
        );
        outln!("    each save is provisioned within seconds.");
        outln!(
            "  * Press Ctrl-C to stop. `scimbridge --data-dir {} channels` shows the state.",
            dir.path.display()
        );
        outln!();
        outln!("Watching {} for changes…", ldif.display());
        watch(dir, ldif).await?;
    }
    Ok(code)
}

/// Runs a cycle after each change of the directory file, until Ctrl-C or SIGTERM.
async fn watch(dir: &DataDir, ldif: &Path) -> Result<()> {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut last = file_stamp(ldif);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                outln!("Stopped.");
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let stamp = file_stamp(ldif);
        if stamp == last {
            continue;
        }
        // The cycle reads the file once the editor has finished writing it.
        last = stamp;
        let connection = dir.connection(CONNECTION).await?;
        match sync_connection(dir, &connection, &BarProgress::new()).await {
            Ok(reports) => {
                print_reports(&reports);
            }
            Err(e) => outln!("cycle stopped: {e:#} (fix the file and save again)"),
        }
    }
}

fn read_or_create_token(path: &Path) -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let token = text.trim().to_owned();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    write_private(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

fn quickstart_config(ldif: &Path, url: &str, token_file: &Path) -> ConfigFile {
    let map = |attributes: &[&str]| FieldMapping {
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        ..FieldMapping::default()
    };
    let attribute_mapping = [
        (ScimField::UserName, map(&["uid"])),
        (ScimField::ExternalId, map(&["entryUUID"])),
        (ScimField::GivenName, map(&["givenName"])),
        (ScimField::FamilyName, map(&["sn"])),
        (ScimField::FormattedName, map(&["cn"])),
        (ScimField::DisplayName, map(&["displayName", "cn"])),
        (ScimField::WorkEmail, map(&["mail"])),
        (ScimField::Title, map(&["title"])),
        (ScimField::WorkPhone, map(&["telephoneNumber"])),
        (ScimField::EmployeeNumber, map(&["employeeNumber"])),
        (ScimField::Department, map(&["ou", "departmentNumber"])),
    ]
    .into_iter()
    .collect();
    ConfigFile {
        version: CONFIG_VERSION,
        data_stores: vec![DataStore {
            name: DATA_STORE.into(),
            kind: DataStoreKind::Ldif {
                path: ldif.display().to_string(),
            },
        }],
        connections: vec![Connection {
            name: CONNECTION.into(),
            active: true,
            target: TargetSettings {
                authentication: AuthenticationMethod::Oauth2Bearer,
                access_token: Some(Secret::File(token_file.display().to_string())),
                ..TargetSettings::new(url)
            },
            options: ProvisioningOptions::default(),
            guard: Default::default(),
            channels: vec![Channel {
                name: "people".into(),
                active: true,
                data_store: DATA_STORE.into(),
                timeout: 60,
                max_threads: 4,
                synchronization_frequency: None,
                live_poll_interval: 5,
                source_settings: SourceSettings::default(),
                source_location: SourceLocation {
                    group_base_dn: Some("ou=groups,dc=example,dc=com".into()),
                    ..SourceLocation::new("ou=people,dc=example,dc=com")
                },
                attribute_mapping,
                extension_mapping: Default::default(),
            }],
        }],
    }
}
