//! Opening the data directory: the state store and its secret key.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::{AuditEvent, Connection, DataStore};
use scimbridge_store::{Sealed, SecretKey, SqliteStore};

pub const STATE_DB: &str = "state.db";
pub const SECRET_KEY_FILE: &str = "secret.key";

pub const AUDIT_LOG: &str = "audit.log";

/// The data directory and its files are for the service's user alone: they hold the
/// administrator's password hash, the secret key, people's data and DNs in the audit trail.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates the data directory (owner only, whatever the umask) when it is missing; the folders
/// above it are created as usual.
pub fn create_data_dir(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    match builder.create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create data directory {}", path.display()))
        }
    }
}

/// Writes a file of the data directory, readable by its owner only when it is created.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A data directory made before it was created owner-only, or opened up since, is named
/// with the command that closes it; it is not changed behind the administrator's back.
#[cfg(unix)]
fn warn_if_open_to_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let open = |metadata: &std::fs::Metadata| {
        let mode = metadata.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    };
    if let Some(mode) = std::fs::metadata(path).ok().as_ref().and_then(open) {
        tracing::warn!(
            path = %path.display(),
            mode = %format!("{mode:04o}"),
            fix = %format!("chmod 700 {}", path.display()),
            "the data directory is open to other users"
        );
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.path();
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        if let Some(mode) = open(&metadata).filter(|_| metadata.is_file()) {
            tracing::warn!(
                path = %file.display(),
                mode = %format!("{mode:04o}"),
                fix = %format!("chmod 600 {}", file.display()),
                "a file of the data directory is open to other users"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open_to_others(_path: &Path) {}

pub struct DataDir {
    pub store: Sealed<SqliteStore>,
    pub path: std::path::PathBuf,
}

impl DataDir {
    /// Opens the data directory, creating it (and the state store) when `create` is set.
    pub async fn open(path: &Path, create: bool) -> Result<DataDir> {
        if !path.exists() {
            if !create {
                return Err(anyhow!(
                    "data directory {} does not exist (run `scimbridge apply -f FILE` or `scimbridge quickstart` first, or pass --data-dir)",
                    path.display()
                ));
            }
            create_data_dir(path)?;
        } else {
            warn_if_open_to_others(path);
        }
        let key = SecretKey::load_or_create(&path.join(SECRET_KEY_FILE))?;
        let store = Sealed::new(SqliteStore::open(&path.join(STATE_DB)).await?, key);
        Ok(DataDir {
            store,
            path: path.to_path_buf(),
        })
    }

    pub async fn connection(&self, name: &str) -> Result<Connection> {
        match self.store.connection(name).await? {
            Some(connection) => Ok(connection),
            None => {
                let names: Vec<String> = self
                    .store
                    .connections()
                    .await?
                    .into_iter()
                    .map(|c| c.name)
                    .collect();
                Err(anyhow!(
                    "no connection named \"{name}\" (known: {})",
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ))
            }
        }
    }

    /// Appends a cycle's provisioning events to `audit.log`, one JSON object per line.
    pub fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        use std::io::Write;
        if events.is_empty() {
            return Ok(());
        }
        let path = self.path.join(AUDIT_LOG);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(FILE_MODE);
        }
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = String::new();
        for event in events {
            text.push_str(&serde_json::to_string(event)?);
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    pub async fn data_store(&self, name: &str) -> Result<DataStore> {
        self.store
            .data_stores()
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or_else(|| anyhow!("data store \"{name}\" does not exist"))
    }
}
