//! The bundled SCIM 2.0 service provider: a small but complete target used by
//! `scimbridge quickstart`, by tests, and as a reference implementation.
//!
//! Resources live in memory (with case-insensitive `userName` / group
//! `displayName` indexes) and are written through to SQLite in the same
//! request, so a restart on the same file shows the same resources.

// Only the binary may call into C (cli/src/memory.rs); the workspace denies it, this forbids it.
#![forbid(unsafe_code)]

mod faults;
mod http;
mod resources;
mod time;
mod v1;

use std::path::PathBuf;
use std::sync::Arc;

pub use faults::Faults;

/// Every endpoint is mounted under this path.
pub const BASE_PATH: &str = "/scim/v2";

/// How to open a [`ScimTarget`]. With neither credential set, the target is open.
#[derive(Clone, Default)]
pub struct TargetConfig {
    /// SQLite database file; created (with parent directories) if missing.
    pub database_path: PathBuf,
    /// When set, `/Users`, `/Groups`, `/Bulk` and `/.search` accept
    /// `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// When set (user name, password), they accept HTTP Basic with these.
    pub basic_credentials: Option<(String, String)>,
}

// Manual so the bearer token never ends up in logs.
impl std::fmt::Debug for TargetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetConfig")
            .field("database_path", &self.database_path)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "basic_credentials",
                &self.basic_credentials.as_ref().map(|(user, _)| user),
            )
            .finish()
    }
}

/// Errors opening or serving the target. Request-level failures are SCIM
/// error responses, not `TargetError`s.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored resource {id} is not valid JSON: {source}")]
    CorruptResource {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("stored resource {id} has unknown resource type {resource_type:?}")]
    UnknownResourceType { id: String, resource_type: String },
}

/// A running SCIM target; cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct ScimTarget {
    inner: Arc<resources::Resources>,
    auth: Option<Arc<http::Credentials>>,
    faults: Arc<faults::FaultState>,
}

impl std::fmt::Debug for ScimTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimTarget")
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl ScimTarget {
    /// Opens (creating if needed) the SQLite file in WAL mode, creates the
    /// schema and loads all resources into memory.
    pub async fn open(config: TargetConfig) -> Result<ScimTarget, TargetError> {
        let resources = resources::Resources::open(&config.database_path).await?;
        Ok(ScimTarget {
            inner: Arc::new(resources),
            faults: Arc::default(),
            auth: http::Credentials::new(
                config.bearer_token.as_deref(),
                config
                    .basic_credentials
                    .as_ref()
                    .map(|(user, password)| (user.as_str(), password.as_str())),
            )
            .map(Arc::new),
        })
    }

    /// The HTTP API, everything mounted under [`BASE_PATH`].
    pub fn router(&self) -> axum::Router {
        http::router(self.inner.clone(), self.auth.clone(), self.faults.clone())
    }

    /// Injects these faults from now on (and restarts their counting); `Faults::default()`
    /// stops injecting.
    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// Requests received on `/Users`, `/Groups`, `/Bulk` and `/.search`, by
    /// `METHOD /Resource[/{id}]`.
    pub fn requests(&self) -> std::collections::BTreeMap<String, u64> {
        self.faults.requests()
    }

    /// Serves [`Self::router`] on `listener` until `shutdown` completes, then
    /// finishes in-flight requests.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), TargetError> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
