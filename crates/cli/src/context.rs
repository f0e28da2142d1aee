//! Opening the data directory: the state store and its secret key.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use scimbridge_engine::state::Store;
use scimbridge_model::{AuditEvent, Connection, DataStore};
use scimbridge_store::{SecretKey, SqliteStore};

pub const STATE_DB: &str = "state.db";
pub const SECRET_KEY_FILE: &str = "secret.key";

pub const AUDIT_LOG: &str = "audit.log";

pub struct DataDir {
    pub store: SqliteStore,
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
            std::fs::create_dir_all(path)
                .with_context(|| format!("cannot create data directory {}", path.display()))?;
        }
        let key = SecretKey::load_or_create(&path.join(SECRET_KEY_FILE))?;
        let store = SqliteStore::open(&path.join(STATE_DB), key).await?;
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
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
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
