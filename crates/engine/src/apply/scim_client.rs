//! A SCIM 2.0 client for one target: one keep-alive connection pool, timeouts, authentication,
//! a rate limit, retries with backoff, and discovery of what the target supports.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use scimbridge_model::{ScimVersion, TargetSettings, UniqueUserIdentifier};

const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// What a look-up by listing needs of each user: both identifiers.
const USER_LOOKUP_ATTRIBUTES: &str = "id,userName,emails";
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::auth::{AuthError, Authenticator};
use super::dialect::{Dialect, error_detail};
use super::politeness::{RateLimiter, RetryPolicy, parse_retry_after};
use crate::latency::Histogram;

#[derive(Debug, thiserror::Error)]
pub enum ScimClientError {
    #[error("{method} {url}: HTTP {status}{}: {detail}", scim_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Status {
        method: Method,
        url: String,
        status: u16,
        scim_type: Option<String>,
        detail: String,
        /// The target's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: Method,
        url: String,
        kind: TransportKind,
        reason: String,
    },
    #[error("{method} {url}: unexpected response: {reason}")]
    InvalidResponse {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{source} (gave up after {retries} retries)")]
    GaveUp {
        retries: u32,
        source: Box<ScimClientError>,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("the unique user identifier workEmail has no value: map workEmail, or use userName")]
    MissingIdentifier,
    /// The look-up found a user that another entry of the channel owns.
    #[error(
        "the target user {identifier} (id {target_id}) belongs to another entry of this channel, \
         {owner}; a target user belongs to one entry, so nothing was written (two entries map to \
         one user: fix the directory)"
    )]
    TargetUserTaken {
        identifier: String,
        target_id: String,
        owner: String,
    },
    #[error(
        "the target refuses the look-up filter {filter} made from target.filter_expression, and a custom filter cannot be replaced by listing users; change or remove filter_expression: {source}"
    )]
    FilterRefused {
        filter: String,
        source: Box<ScimClientError>,
    },
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
    /// The state store could not say which entry owns a target user the look-up found.
    #[error("cannot tell which entry owns the target user {target_id}: {reason}")]
    OwnerUnknown { target_id: String, reason: String },
}

/// How a request failed below HTTP, which decides whether repeating it is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection was made: the request was not sent.
    Connect,
    /// The answer did not come in time: the target may have acted on the request.
    Timeout,
    /// The connection broke (reset, closed early): the target may have acted on the request.
    Broken,
}

impl ScimClientError {
    /// The HTTP status of the answer, through any retries and context.
    pub fn status(&self) -> Option<u16> {
        match self.innermost() {
            ScimClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn innermost(&self) -> &ScimClientError {
        match self {
            ScimClientError::GaveUp { source, .. }
            | ScimClientError::FilterRefused { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// True when the target cannot answer a look-up filter: `400 invalidFilter` (or a 400 that
    /// says nothing more), `501 Not Implemented`.
    pub fn refuses_filter(&self) -> bool {
        match self.innermost() {
            ScimClientError::Status {
                status: 400,
                scim_type,
                ..
            } => scim_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("invalidFilter")),
            ScimClientError::Status { status: 501, .. } => true,
            _ => false,
        }
    }

    /// True when the target may have carried out the request although no answer said so.
    pub fn outcome_unknown(&self) -> bool {
        match self.innermost() {
            ScimClientError::Transport { kind, .. } => *kind != TransportKind::Connect,
            ScimClientError::Status { status, .. } => matches!(status, 500 | 502 | 504),
            _ => false,
        }
    }

    /// True when the failure may be the target's rather than the request's: no connection, no
    /// answer, credentials refused or forbidden (401, 403), or a server error or rate limit that
    /// retries did not ride out. Many of these in a row mean the target is down, not that the records are wrong.
    pub fn target_unavailable(&self) -> bool {
        match self.innermost() {
            ScimClientError::Transport { .. } | ScimClientError::Auth(_) => true,
            // 501: the request is not implemented, which says nothing of the target's health.
            // 403 may be one resource refused to credentials that work, or revoked scopes:
            // the cycle tells which (see `OutageWatch`).
            ScimClientError::Status { status, .. } => {
                matches!(status, 401 | 403 | 407 | 429) || (*status >= 500 && *status != 501)
            }
            _ => false,
        }
    }

    /// True when the target says the resource already exists: a 409, or a 400 whose
    /// `scimType` or detail says so (some targets answer a duplicate that way).
    pub fn is_duplicate(&self) -> bool {
        let ScimClientError::Status {
            status,
            scim_type,
            detail,
            ..
        } = self.innermost()
        else {
            return false;
        };
        let detail = detail.to_lowercase();
        *status == 409
            || (*status == 400
                && (scim_type.as_deref() == Some("uniqueness")
                    || ["already exist", "duplicate", "not unique", "must be unique"]
                        .iter()
                        .any(|needle| detail.contains(needle))))
    }
}

/// What the target says it supports (`/ServiceProviderConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The configuration document was found.
    pub discovered: bool,
    pub patch: bool,
    pub filter: bool,
    pub etag: bool,
    pub sort: bool,
    pub bulk: bool,
    /// Bulk limits the target advertises (0 when it does not say).
    pub bulk_max_operations: usize,
    pub bulk_max_payload_size: usize,
}

impl Capabilities {
    fn from_document(document: &Value) -> Capabilities {
        let supported = |key: &str| {
            document
                .get(key)
                .and_then(|v| v.get("supported"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let bulk_limit = |key: &str| {
            document
                .pointer(&format!("/bulk/{key}"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize
        };
        Capabilities {
            discovered: true,
            patch: supported("patch"),
            filter: supported("filter"),
            etag: supported("etag"),
            sort: supported("sort"),
            bulk: supported("bulk"),
            bulk_max_operations: bulk_limit("maxOperations"),
            bulk_max_payload_size: bulk_limit("maxPayloadSize"),
        }
    }
}

/// Why a connection check failed: what to look at, then the error itself.
#[derive(Debug, thiserror::Error)]
#[error("{hint}: {source}")]
pub struct CheckFailure {
    pub hint: &'static str,
    #[source]
    pub source: ScimClientError,
}

impl From<ScimClientError> for CheckFailure {
    fn from(source: ScimClientError) -> CheckFailure {
        let hint = match source.innermost() {
            ScimClientError::Status {
                status: 401 | 403, ..
            } => "the target refused the credentials",
            ScimClientError::Status { status: 404, .. } => {
                "no SCIM Users resource at this URL; check target.scim_url and target.users_path"
            }
            ScimClientError::Status { .. } => "the target answered with an error",
            ScimClientError::Transport { reason, .. } if reason.contains(PLAIN_HTTP_ANSWER) => {
                "target.scim_url says https:// but the server speaks plain HTTP on that port"
            }
            ScimClientError::Transport { reason, .. } if reason.starts_with("TLS failure") => {
                "TLS failed; check target.ca_certificate and the client certificate"
            }
            ScimClientError::Transport {
                kind: TransportKind::Connect,
                ..
            } => "nothing answers at target.scim_url",
            ScimClientError::Transport { .. } => "the target did not answer",
            ScimClientError::InvalidResponse { .. } => "this is not a SCIM service",
            ScimClientError::Auth(AuthError::TokenEndpoint { .. }) => {
                "no access token could be obtained"
            }
            ScimClientError::Auth(_) | ScimClientError::MissingIdentifier => {
                "the target settings are incomplete"
            }
            ScimClientError::Setup(_) => "the target settings cannot be used",
            ScimClientError::TargetUserTaken { .. } => "two entries map to one target user",
            ScimClientError::OwnerUnknown { .. } => "the state store could not be read",
            ScimClientError::FilterRefused { .. } => "the target refuses the look-up filter",
            ScimClientError::GaveUp { .. } => "the target did not answer",
        };
        CheckFailure { hint, source }
    }
}

/// Proves the target settings work: builds the client (reading CA and client certificate
/// files and secrets), obtains a token when needed, lists one user and reads the capabilities.
pub async fn check_target(
    target: &TargetSettings,
    timeout: Duration,
) -> Result<CheckReport, CheckFailure> {
    // One attempt: a check reports the problem instead of waiting it out.
    let client = ScimClient::new(target, timeout)?.with_retry_policy(RetryPolicy::new(0));
    Ok(client.check().await?)
}

/// What `check` found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    pub users_url: String,
    /// `totalResults` of the Users list.
    pub users: Option<u64>,
    pub capabilities: Capabilities,
}

#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base_url: String,
    users_path: String,
    groups_path: String,
    results_per_page: u32,
    auth: Arc<Authenticator>,
    limiter: Option<Arc<RateLimiter>>,
    retry: RetryPolicy,
    identifier: UniqueUserIdentifier,
    filter_expression: Option<String>,
    capabilities: Arc<OnceCell<Capabilities>>,
    /// Set when the target refused one of our look-up filters: the rest of the cycle (the
    /// client's life) lists instead of sending filters it would refuse again.
    filter_refused: Arc<AtomicBool>,
    requests: Arc<std::sync::atomic::AtomicU64>,
    latency: Arc<std::sync::Mutex<Histogram>>,
    dialect: Dialect,
}

impl std::fmt::Debug for ScimClient {
    // The authorization header is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

struct Answer {
    status: StatusCode,
    body: Option<Value>,
    /// The resource version: the `ETag` header, else `meta.version` of the body.
    version: Option<String>,
}

impl ScimClient {
    /// `timeout` bounds each request, from connecting to the last byte of the answer.
    pub fn new(target: &TargetSettings, timeout: Duration) -> Result<ScimClient, ScimClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .user_agent(concat!("scimbridge/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &target.ca_certificate {
            let pem = std::fs::read(path).map_err(|e| {
                ScimClientError::Setup(format!("cannot read target.ca_certificate {path}: {e}"))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ScimClientError::Setup(format!("target.ca_certificate {path}: {e}"))
            })?;
            if certificates.is_empty() {
                return Err(ScimClientError::Setup(format!(
                    "target.ca_certificate {path} holds no PEM certificate"
                )));
            }
            builder = builder.tls_certs_merge(certificates);
        }
        if let (Some(certificate), Some(key)) = (&target.client_certificate, &target.client_key) {
            let mut pem = std::fs::read(certificate).map_err(|e| {
                ScimClientError::Setup(format!(
                    "cannot read target.client_certificate {certificate}: {e}"
                ))
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|e| {
                ScimClientError::Setup(format!("cannot read target.client_key {key}: {e}"))
            })?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ScimClientError::Setup(format!(
                    "target.client_certificate {certificate} with target.client_key {key}: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| ScimClientError::Setup(describe_reqwest_error(&e)))?;
        let auth = Authenticator::new(target, http.clone())?;
        Ok(ScimClient {
            http,
            base_url: target.scim_url.trim().trim_end_matches('/').to_owned(),
            users_path: format!("/{}", target.users_path.trim().trim_matches('/')),
            groups_path: format!("/{}", target.groups_path.trim().trim_matches('/')),
            results_per_page: target.results_per_page.max(1),
            auth: Arc::new(auth),
            limiter: RateLimiter::new(target.requests_per_second).map(Arc::new),
            retry: RetryPolicy::new(target.max_retries),
            identifier: target.unique_user_identifier,
            filter_expression: target.filter_expression.clone(),
            capabilities: Arc::new(OnceCell::new()),
            filter_refused: Arc::default(),
            requests: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            latency: Arc::default(),
            dialect: Dialect(target.scim_version),
        })
    }

    /// Replaces the retry timing (tests use short backoffs).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> ScimClient {
        self.retry = retry;
        self
    }

    /// The Groups path, as Bulk operations name it.
    pub fn groups_path(&self) -> &str {
        &self.groups_path
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// How long the target took to answer each request so far.
    pub fn request_latency(&self) -> Histogram {
        self.latency
            .lock()
            .map(|histogram| histogram.clone())
            .unwrap_or_default()
    }

    /// How many requests were sent to the target (token requests not included).
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many access tokens were requested (OAuth 2 client credentials).
    pub fn token_requests(&self) -> u64 {
        self.auth.token_requests()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn user_path(&self, id: &str) -> String {
        format!("{}/{}", self.users_path, path_segment(id))
    }

    /// Sends a request, retrying what is safe to retry. `replayable` says whether sending the
    /// request twice does no harm; when false, only failures that prove the target did not act
    /// (no connection, 429, 503) are retried here.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        replayable: bool,
    ) -> Result<Answer, ScimClientError> {
        self.send_conditional(method, path, query, body, replayable, None)
            .await
    }

    /// `send` with an `If-Match` version (RFC 7644 §3.14). A retry after an unknown outcome
    /// first reads the resource's version again: the target may have carried the request out,
    /// and then the version sent first is stale and would only get 412.
    async fn send_conditional(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        replayable: bool,
        if_match: Option<&str>,
    ) -> Result<Answer, ScimClientError> {
        let mut if_match = if_match.map(str::to_owned);
        let mut retries = 0;
        let mut reauthenticated = false;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let authorization = self.auth.header().await?;
            let error = match self
                .attempt(
                    &method,
                    path,
                    query,
                    body,
                    authorization.as_ref(),
                    if_match.as_deref(),
                )
                .await
            {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if error.status() == Some(401)
                && !reauthenticated
                && self.auth.refused(authorization.as_ref()).await
            {
                // An expired or revoked token: fetch a new one and try once more.
                reauthenticated = true;
                continue;
            }
            let retryable = match &error {
                ScimClientError::Status { status, .. } => {
                    matches!(status, 429 | 503) || (replayable && matches!(status, 500 | 502 | 504))
                }
                ScimClientError::Transport { kind, .. } => {
                    *kind == TransportKind::Connect || replayable
                }
                _ => false,
            };
            if !retryable {
                return Err(error);
            }
            if retries >= self.retry.max_retries {
                return Err(if retries == 0 {
                    error
                } else {
                    ScimClientError::GaveUp {
                        retries,
                        source: Box::new(error),
                    }
                });
            }
            let delay = match &error {
                ScimClientError::Status {
                    retry_after: Some(wait),
                    ..
                } => {
                    if *wait > self.retry.max_retry_after {
                        return Err(error);
                    }
                    *wait
                }
                _ => self.retry.backoff(retries),
            };
            tracing::debug!(%error, delay_ms = delay.as_millis() as u64, retry = retries + 1, "retrying");
            tokio::time::sleep(delay).await;
            retries += 1;
            if if_match.is_some() && error.outcome_unknown() {
                // A 404 here means the resource is gone (a lost DELETE answer, say): the caller
                // decides what that means.
                if_match = Box::pin(self.send(Method::GET, path, &[], None, true))
                    .await?
                    .version;
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        authorization: Option<&HeaderValue>,
        if_match: Option<&str>,
    ) -> Result<Answer, ScimClientError> {
        let url = self.url(path);
        let transport = |error: reqwest::Error| ScimClientError::Transport {
            method: method.clone(),
            url: url.clone(),
            kind: if error.is_connect() {
                TransportKind::Connect
            } else if error.is_timeout() {
                TransportKind::Timeout
            } else {
                TransportKind::Broken
            },
            reason: describe_reqwest_error(&error),
        };
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(header::ACCEPT, self.dialect.accept());
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        if let Some(version) = if_match {
            request = request.header(header::IF_MATCH, version);
        }
        if *method == Method::PATCH && path.starts_with(&self.groups_path) {
            // The answer to a group PATCH would carry every member, and only its status is
            // used: targets that know RFC 7240 answer 204, the others ignore the header.
            request = request.header("prefer", "return=minimal");
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, self.dialect.media_type())
                .body(body.to_string());
        }
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = std::time::Instant::now();
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, crate::clock::system_now()));
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        let text = response.text().await.map_err(transport)?;
        if let Ok(mut latency) = self.latency.lock() {
            latency.observe(sent.elapsed().as_secs_f64());
        }
        let json: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        if !status.is_success() {
            let (scim_type, detail) = json
                .as_ref()
                .and_then(error_detail)
                .unwrap_or_else(|| (None, truncate(&text, 200)));
            return Err(ScimClientError::Status {
                method: method.clone(),
                url,
                status: status.as_u16(),
                scim_type,
                detail,
                retry_after,
            });
        }
        if json.is_none() && !text.trim().is_empty() {
            return Err(ScimClientError::InvalidResponse {
                method: method.clone(),
                url,
                reason: format!(
                    "body is not JSON (content type {content_type}): {}",
                    truncate(&text, 120)
                ),
            });
        }
        let version = etag.or_else(|| {
            json.as_ref()
                .and_then(|b| b.pointer("/meta/version"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Ok(Answer {
            status,
            body: json,
            version,
        })
    }

    /// The target's capabilities, read once per client (once per cycle). A target without
    /// `/ServiceProviderConfig` is assumed to support nothing optional.
    pub async fn capabilities(&self) -> Result<Capabilities, ScimClientError> {
        self.capabilities
            .get_or_try_init(|| async {
                let path = self.dialect.service_provider_config_path();
                match self.send(Method::GET, path, &[], None, true).await {
                    Ok(Answer {
                        body: Some(document),
                        ..
                    }) => {
                        let mut capabilities = Capabilities::from_document(&document);
                        // Bulk is only spoken in its 2.0 form.
                        capabilities.bulk &= self.dialect.0 == ScimVersion::V2;
                        Ok(capabilities)
                    }
                    Ok(_) => Ok(Capabilities::default()),
                    Err(e) if matches!(e.status(), Some(404 | 405 | 501)) => {
                        Ok(Capabilities::default())
                    }
                    Err(e @ ScimClientError::InvalidResponse { .. }) => {
                        tracing::warn!(error = %e, "the target's ServiceProviderConfig is unreadable; using PUT for updates");
                        Ok(Capabilities::default())
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
    }

    /// The value of the unique user identifier for a user about to be created: its userName,
    /// or the work email of its image.
    pub fn identifier_value(&self, user_name: &str, image: &Value) -> Option<String> {
        match self.identifier {
            UniqueUserIdentifier::UserName => Some(user_name.to_owned()),
            UniqueUserIdentifier::WorkEmail => work_email(image).map(str::to_owned),
        }
    }

    /// The filter that finds the user whose identifier is `value`.
    pub fn identifier_filter(&self, value: &str) -> String {
        match (&self.filter_expression, self.identifier) {
            (Some(expression), _) => expression.replace("%s", &escape_filter_string(value)),
            (None, UniqueUserIdentifier::UserName) => {
                format!("userName eq {}", scimbridge_scim::filter::quote(value))
            }
            (None, UniqueUserIdentifier::WorkEmail) => {
                format!("emails eq {}", scimbridge_scim::filter::quote(value))
            }
        }
    }

    /// Finds a user by the unique user identifier; returns its `id`. With a filter when the
    /// target can filter, else by listing every user page by page. A custom filter expression
    /// cannot be emulated: a target that refuses it is an error.
    pub async fn find_user(&self, value: &str) -> Result<Option<String>, ScimClientError> {
        let filter = self.identifier_filter(value);
        // Some targets ignore the filter or compare differently: with the default filters,
        // keep only a real match. A custom filter expression is trusted as written.
        let is_match = |r: &Value| match (&self.filter_expression, self.identifier) {
            (Some(_), _) => true,
            (None, UniqueUserIdentifier::UserName) => r
                .get("userName")
                .and_then(Value::as_str)
                .is_some_and(|u| same_text(u, value)),
            (None, UniqueUserIdentifier::WorkEmail) => emails(r).any(|e| same_text(e, value)),
        };
        let custom = self.filter_expression.is_some();
        let matches: Vec<Value> = if custom || self.filters().await? {
            match self.filtered_users(&filter).await {
                Ok(resources) => resources.into_iter().filter(|r| is_match(r)).collect(),
                Err(e) if e.refuses_filter() && custom => {
                    return Err(ScimClientError::FilterRefused {
                        filter,
                        source: Box::new(e),
                    });
                }
                Err(e) if e.refuses_filter() => {
                    self.remember_filter_refused(&e);
                    self.list_matching(&self.users_path, USER_LOOKUP_ATTRIBUTES, is_match)
                        .await?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.list_matching(&self.users_path, USER_LOOKUP_ATTRIBUTES, is_match)
                .await?
        };
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(resource_id(one).ok_or_else(|| {
                self.invalid(Method::GET, &self.users_path, "user without id")
            })?)),
            _ => Err(self.invalid(
                Method::GET,
                &self.users_path,
                format!(
                    "{} users match {filter}; cannot tell which one to link",
                    matches.len()
                ),
            )),
        }
    }

    /// The users a filter selects.
    async fn filtered_users(&self, filter: &str) -> Result<Vec<Value>, ScimClientError> {
        let answer = self
            .send(
                Method::GET,
                &self.users_path,
                &[("filter", filter)],
                None,
                true,
            )
            .await?;
        let body = answer
            .body
            .ok_or_else(|| self.invalid(Method::GET, &self.users_path, "empty list response"))?;
        Ok(array_field(Some(&body), "Resources"))
    }

    /// Whether look-ups send a filter: the target advertises filtering and has not refused one
    /// of ours in this cycle.
    async fn filters(&self) -> Result<bool, ScimClientError> {
        Ok(self.capabilities().await?.filter && !self.filter_refused.load(Ordering::Relaxed))
    }

    fn remember_filter_refused(&self, error: &ScimClientError) {
        if !self.filter_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "the target refuses look-up filters; users and groups are found by listing them page by page for the rest of this cycle");
        }
    }

    /// The resources under `path` that `keep` accepts, read page by page (`results_per_page` at
    /// a time), for a target that cannot filter. Each page goes through `send`: the rate limit
    /// and the retries apply.
    async fn list_matching(
        &self,
        path: &str,
        attributes: &str,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, ScimClientError> {
        let count = self.results_per_page.to_string();
        let mut found = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut start = 1usize;
        loop {
            let start_text = start.to_string();
            let answer = self
                .send(
                    Method::GET,
                    path,
                    &[
                        ("startIndex", start_text.as_str()),
                        ("count", count.as_str()),
                        ("attributes", attributes),
                    ],
                    None,
                    true,
                )
                .await?;
            let body = answer.body.unwrap_or(Value::Null);
            let page = array_field(Some(&body), "Resources");
            let short = page.len() < self.results_per_page as usize;
            start += page.len();
            let mut fresh = 0;
            for resource in page {
                // A resource seen on an earlier page (the list moved under us) counts once.
                if resource_id(&resource).is_some_and(|id| !seen.insert(id)) {
                    continue;
                }
                fresh += 1;
                if keep(&resource) {
                    found.push(resource);
                }
            }
            let done = match body.get("totalResults").and_then(Value::as_u64) {
                Some(total) => start as u64 > total,
                None => short,
            };
            // Nothing new: a target that ignores startIndex would otherwise be read forever.
            if fresh == 0 || done {
                break;
            }
        }
        Ok(found)
    }

    /// Creates a user; returns its `id` and version. Not retried when the outcome is unknown:
    /// the caller looks the user up first (see `apply::create_or_link`).
    pub async fn create_user(
        &self,
        image: &Value,
    ) -> Result<(String, Option<String>), ScimClientError> {
        let body = self.dialect.resource(image);
        let answer = self
            .send(Method::POST, &self.users_path, &[], Some(&body), false)
            .await?;
        let id = answer.body.as_ref().and_then(resource_id).ok_or_else(|| {
            self.invalid(Method::POST, &self.users_path, "created user has no id")
        })?;
        Ok((id, answer.version))
    }

    /// Replaces a user; returns its new version when the target tells it.
    pub async fn replace_user(
        &self,
        id: &str,
        image: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<String>, ScimClientError> {
        self.send_conditional(
            Method::PUT,
            &self.user_path(id),
            &[],
            Some(image),
            true,
            if_match,
        )
        .await
        .map(|a| a.version)
    }

    /// Sends PATCH operations (RFC 7644 §3.5.2). Ours replace or remove whole values, so
    /// sending them twice gives the same result.
    pub async fn patch_user(
        &self,
        id: &str,
        operations: &[Value],
        if_match: Option<&str>,
    ) -> Result<Option<String>, ScimClientError> {
        let body = self.dialect.patch_body(operations);
        self.send_conditional(
            Method::PATCH,
            &self.user_path(id),
            &[],
            Some(&body),
            true,
            if_match,
        )
        .await
        .map(|a| a.version)
    }

    pub async fn delete_user(
        &self,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimClientError> {
        self.send_conditional(
            Method::DELETE,
            &self.user_path(id),
            &[],
            None,
            true,
            if_match,
        )
        .await
        .map(|_| ())
    }

    /// Sends a SCIM Bulk request (RFC 7644 §3.7) and returns the per-operation results. Not
    /// retried when the outcome is unknown: the caller falls back to one request per user,
    /// each looking the user up first.
    pub async fn bulk(&self, operations: &[Value]) -> Result<Vec<Value>, ScimClientError> {
        let body = json!({ "schemas": [BULK_REQUEST_SCHEMA], "Operations": operations });
        let answer = self
            .send(Method::POST, "/Bulk", &[], Some(&body), false)
            .await?;
        Ok(array_field(answer.body.as_ref(), "Operations"))
    }

    /// Finds many users by `userName` with one `or` filter, or by listing every user page by
    /// page when the target cannot filter; returns userName (lower-cased) → id. Only for the
    /// default `userName` identifier.
    pub async fn find_users_by_user_name(
        &self,
        user_names: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, ScimClientError> {
        let wanted: HashSet<String> = user_names.iter().map(|u| u.to_lowercase()).collect();
        let is_wanted = |user: &Value| {
            user.get("userName")
                .and_then(Value::as_str)
                .is_some_and(|name| wanted.contains(&name.to_lowercase()))
        };
        let found = if self.filters().await? {
            let filter = user_names
                .iter()
                .map(|u| format!("userName eq {}", scimbridge_scim::filter::quote(u)))
                .collect::<Vec<_>>()
                .join(" or ");
            let count = user_names.len().to_string();
            let filtered = self
                .list(
                    &self.users_path,
                    &[
                        ("filter", filter.as_str()),
                        ("attributes", "id,userName"),
                        ("count", count.as_str()),
                    ],
                )
                .await;
            match filtered {
                Ok(found) => found,
                Err(e) if e.refuses_filter() => {
                    self.remember_filter_refused(&e);
                    self.list_matching(&self.users_path, USER_LOOKUP_ATTRIBUTES, &is_wanted)
                        .await?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.list_matching(&self.users_path, USER_LOOKUP_ATTRIBUTES, &is_wanted)
                .await?
        };
        let mut ids = std::collections::HashMap::new();
        for user in &found {
            if let (Some(name), Some(id)) = (
                user.get("userName").and_then(Value::as_str),
                resource_id(user),
            ) {
                let name = name.to_lowercase();
                if wanted.contains(&name) && ids.insert(name.clone(), id).is_some() {
                    return Err(self.invalid(
                        Method::GET,
                        &self.users_path,
                        format!("several users are named {name}; cannot tell which one to link"),
                    ));
                }
            }
        }
        Ok(ids)
    }

    /// Whether users are looked up by plain `userName` (so many can be found with one filter).
    pub fn identifies_by_user_name(&self) -> bool {
        self.identifier == UniqueUserIdentifier::UserName && self.filter_expression.is_none()
    }

    /// The user's current version (for `If-Match`), read from the target.
    pub async fn user_version(&self, id: &str) -> Result<Option<String>, ScimClientError> {
        self.send(Method::GET, &self.user_path(id), &[], None, true)
            .await
            .map(|a| a.version)
    }

    fn group_path(&self, id: &str) -> String {
        format!("{}/{}", self.groups_path, path_segment(id))
    }

    fn invalid(&self, method: Method, path: &str, reason: impl Into<String>) -> ScimClientError {
        ScimClientError::InvalidResponse {
            method,
            url: self.url(path),
            reason: reason.into(),
        }
    }

    /// Finds a group by `displayName` (case-insensitive, as the core schema says): with a
    /// filter when the target can filter, else by listing every group page by page.
    pub async fn find_group(&self, display_name: &str) -> Result<Option<String>, ScimClientError> {
        let same_name = |g: &Value| {
            g.get("displayName")
                .and_then(Value::as_str)
                .is_some_and(|n| same_text(n, display_name))
        };
        let found: Vec<Value> = if self.filters().await? {
            let filter = format!(
                "displayName eq {}",
                scimbridge_scim::filter::quote(display_name)
            );
            let filtered = self
                .list(
                    &self.groups_path,
                    &[
                        ("filter", filter.as_str()),
                        ("attributes", "id,displayName"),
                    ],
                )
                .await;
            match filtered {
                Ok(page) => page.into_iter().filter(|g| same_name(g)).collect(),
                Err(e) if e.refuses_filter() => {
                    self.remember_filter_refused(&e);
                    self.list_matching(&self.groups_path, "id,displayName", &same_name)
                        .await?
                }
                Err(e) => return Err(e),
            }
        } else {
            self.list_matching(&self.groups_path, "id,displayName", &same_name)
                .await?
        };
        match found.as_slice() {
            [] => Ok(None),
            [one] => resource_id(one)
                .map(Some)
                .ok_or_else(|| self.invalid(Method::GET, &self.groups_path, "group without id")),
            many => Err(self.invalid(
                Method::GET,
                &self.groups_path,
                format!(
                    "{} groups are named {display_name}; cannot tell which one to link",
                    many.len()
                ),
            )),
        }
    }

    async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<Value>, ScimClientError> {
        let answer = self.send(Method::GET, path, query, None, true).await?;
        Ok(array_field(answer.body.as_ref(), "Resources"))
    }

    /// Creates a group with these member ids; returns its `id`.
    pub async fn create_group(
        &self,
        display_name: &str,
        member_ids: &[&str],
    ) -> Result<String, ScimClientError> {
        let body = self.dialect.resource(&group_body(display_name, member_ids));
        let answer = self
            .send(Method::POST, &self.groups_path, &[], Some(&body), false)
            .await?;
        answer
            .body
            .as_ref()
            .and_then(resource_id)
            .ok_or_else(|| self.invalid(Method::POST, &self.groups_path, "created group has no id"))
    }

    /// The ids of the group's members, as the target has them now.
    pub async fn group_member_ids(&self, id: &str) -> Result<Vec<String>, ScimClientError> {
        let path = self.group_path(id);
        let answer = self
            .send(Method::GET, &path, &[("attributes", "members")], None, true)
            .await?;
        Ok(answer
            .body
            .as_ref()
            .and_then(|b| b.get("members"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    pub async fn patch_group(&self, id: &str, operations: &[Value]) -> Result<(), ScimClientError> {
        let body = self.dialect.patch_body(operations);
        self.send(Method::PATCH, &self.group_path(id), &[], Some(&body), true)
            .await
            .map(|_| ())
    }

    pub async fn replace_group(
        &self,
        id: &str,
        display_name: &str,
        member_ids: &[&str],
    ) -> Result<(), ScimClientError> {
        let body = self.dialect.resource(&group_body(display_name, member_ids));
        self.send(Method::PUT, &self.group_path(id), &[], Some(&body), true)
            .await
            .map(|_| ())
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), ScimClientError> {
        self.send(Method::DELETE, &self.group_path(id), &[], None, true)
            .await
            .map(|_| ())
    }

    /// One authenticated request that any working target answers (the first user), tried twice
    /// at most, with a fresh token after a 401: asked when operations keep failing, to tell a
    /// target that is down (or refusing our credentials) from records it refuses.
    pub async fn probe(&self) -> Result<(), ScimClientError> {
        let mut reauthenticated = false;
        let mut retried = false;
        loop {
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let authorization = self.auth.header().await?;
            let query = [("startIndex", "1"), ("count", "1")];
            let error = match self
                .attempt(
                    &Method::GET,
                    &self.users_path,
                    &query,
                    None,
                    authorization.as_ref(),
                    None,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if error.status() == Some(401)
                && !reauthenticated
                && self.auth.refused(authorization.as_ref()).await
            {
                reauthenticated = true;
                continue;
            }
            let transient = match &error {
                ScimClientError::Transport { .. } => true,
                ScimClientError::Status { status, .. } => {
                    matches!(status, 429 | 500 | 502 | 503 | 504)
                }
                _ => false,
            };
            if retried || !transient {
                return Err(error);
            }
            let delay = match &error {
                ScimClientError::Status {
                    retry_after: Some(wait),
                    ..
                } if *wait <= self.retry.max_retry_after => *wait,
                _ => self.retry.backoff(0),
            };
            tokio::time::sleep(delay).await;
            retried = true;
        }
    }

    /// Proves the URL answers SCIM and the credentials are accepted, or says precisely why not.
    pub async fn check(&self) -> Result<CheckReport, ScimClientError> {
        let users_url = self.url(&self.users_path);
        let answer = self
            .send(
                Method::GET,
                &self.users_path,
                &[("startIndex", "1"), ("count", "1")],
                None,
                true,
            )
            .await?;
        let body = answer.body.unwrap_or(Value::Null);
        if !self.dialect.is_list_response(&body) || answer.status != StatusCode::OK {
            return Err(ScimClientError::InvalidResponse {
                method: Method::GET,
                url: users_url,
                reason: format!(
                    "HTTP {} with a body that is not a SCIM ListResponse; is scim_url the SCIM base URL?",
                    answer.status.as_u16()
                ),
            });
        }
        let capabilities = self.capabilities().await?;
        Ok(CheckReport {
            users_url,
            users: body.get("totalResults").and_then(Value::as_u64),
            capabilities,
        })
    }
}

fn group_body(display_name: &str, member_ids: &[&str]) -> Value {
    let members: Vec<Value> = member_ids.iter().map(|id| json!({ "value": id })).collect();
    json!({
        "schemas": [scimbridge_scim::GROUP_SCHEMA],
        "displayName": display_name,
        "members": members,
    })
}

/// The array under `key`, empty when there is none.
fn array_field(body: Option<&Value>, key: &str) -> Vec<Value> {
    body.and_then(|b| b.get(key))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn resource_id(resource: &Value) -> Option<String> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Equal but for case, as SCIM compares `userName`, emails and `displayName` (and as targets
/// do, beyond ASCII too).
fn same_text(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn emails(resource: &Value) -> impl Iterator<Item = &str> {
    resource
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
}

/// The `emails` value of type work (compared case-insensitively), else the primary one.
fn work_email(image: &Value) -> Option<&str> {
    let emails = image.get("emails").and_then(Value::as_array)?;
    emails
        .iter()
        .find(|e| {
            e.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("work"))
        })
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        })
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// Escapes a value for the inside of a quoted SCIM filter string (the quotes are the filter
/// expression's own).
fn escape_filter_string(value: &str) -> String {
    let quoted = scimbridge_scim::filter::quote(value);
    quoted[1..quoted.len() - 1].to_owned()
}

/// Percent-encodes an id for use as one path segment.
fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a TLS client made of an answer in plain HTTP: an `https://` URL on an HTTP port.
const PLAIN_HTTP_ANSWER: &str = "the server answered in plain HTTP, not TLS";

/// Names the failure in words an operator acts on: refused connection, timeout, TLS.
pub(crate) fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper repeats the inner message in the outer one; keep each once.
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    let all = causes.join(": ");
    let lower = all.to_lowercase();
    // rustls reads a plain-HTTP answer as a corrupt TLS record: say what it means.
    if lower.contains("invalidcontenttype") {
        return format!(
            "TLS failure: {PLAIN_HTTP_ANSWER} (use http:// in the URL, or the server's TLS port): {all}"
        );
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        "TLS failure"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    if all.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {all}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimbridge_model::Secret;

    fn client(target: TargetSettings) -> ScimClient {
        ScimClient::new(&target, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        assert_eq!(path_segment("abc-123"), "abc-123");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn url_and_paths_are_joined_with_or_without_slashes() {
        let plain = client(TargetSettings::new("http://127.0.0.1:1/scim/v2/"));
        assert_eq!(
            plain.url(&plain.users_path),
            "http://127.0.0.1:1/scim/v2/Users"
        );
        let custom = client(TargetSettings {
            users_path: "identities/users/".into(),
            ..TargetSettings::new("http://127.0.0.1:1/api")
        });
        assert_eq!(
            custom.url(&custom.user_path("u 1")),
            "http://127.0.0.1:1/api/identities/users/u%201"
        );
    }

    #[test]
    fn identifier_filters_follow_the_settings() {
        let image = json!({"userName": "ann", "emails": [
            {"value": "ann@home.example", "type": "home"},
            {"value": "ann@corp.example", "type": "Work"}]});
        let by_name = client(TargetSettings::new("http://127.0.0.1:1"));
        assert_eq!(
            by_name.identifier_value("ann", &image).as_deref(),
            Some("ann")
        );
        assert_eq!(by_name.identifier_filter("a\"b"), r#"userName eq "a\"b""#);

        let by_email = client(TargetSettings {
            unique_user_identifier: UniqueUserIdentifier::WorkEmail,
            ..TargetSettings::new("http://127.0.0.1:1")
        });
        let email = by_email.identifier_value("ann", &image).unwrap();
        assert_eq!(email, "ann@corp.example");
        assert_eq!(
            by_email.identifier_filter(&email),
            r#"emails eq "ann@corp.example""#
        );
        assert_eq!(
            by_email.identifier_value("ann", &json!({"userName": "ann"})),
            None
        );

        let custom = client(TargetSettings {
            filter_expression: Some(r#"externalId eq "%s""#.into()),
            ..TargetSettings::new("http://127.0.0.1:1")
        });
        assert_eq!(
            custom.identifier_filter(r#"x"y\z"#),
            r#"externalId eq "x\"y\\z""#
        );
    }

    #[test]
    fn duplicates_are_recognised_in_409_and_400_answers() {
        let status = |status: u16, scim_type: Option<&str>, detail: &str| ScimClientError::Status {
            method: Method::POST,
            url: "u".into(),
            status,
            scim_type: scim_type.map(str::to_owned),
            detail: detail.into(),
            retry_after: None,
        };
        assert!(status(409, None, "").is_duplicate());
        assert!(status(400, Some("uniqueness"), "").is_duplicate());
        assert!(status(400, None, "User with userName ann already exists").is_duplicate());
        assert!(!status(400, Some("invalidValue"), "bad email").is_duplicate());
        assert!(!status(500, None, "duplicate key").is_duplicate());
        let wrapped = ScimClientError::GaveUp {
            retries: 2,
            source: Box::new(status(409, None, "")),
        };
        assert!(wrapped.is_duplicate());
        assert_eq!(wrapped.status(), Some(409));
    }

    #[test]
    fn failures_that_may_be_the_target_s_are_told_from_the_records() {
        let status = |status: u16| ScimClientError::Status {
            method: Method::PATCH,
            url: "u".into(),
            status,
            scim_type: None,
            detail: String::new(),
            retry_after: None,
        };
        for down in [401, 403, 429, 500, 502, 503, 504] {
            assert!(status(down).target_unavailable(), "{down}");
        }
        for record in [400, 404, 409, 412, 501] {
            assert!(!status(record).target_unavailable(), "{record}");
        }
        let transport = ScimClientError::Transport {
            method: Method::POST,
            url: "u".into(),
            kind: TransportKind::Connect,
            reason: "refused".into(),
        };
        assert!(transport.target_unavailable());
        assert!(!transport.outcome_unknown());
        let gave_up = ScimClientError::GaveUp {
            retries: 3,
            source: Box::new(status(500)),
        };
        assert!(gave_up.target_unavailable() && gave_up.outcome_unknown());
        assert!(!ScimClientError::MissingIdentifier.target_unavailable());
    }

    #[test]
    fn refused_filters_are_told_from_other_errors() {
        let status = |status: u16, scim_type: Option<&str>| ScimClientError::Status {
            method: Method::GET,
            url: "u".into(),
            status,
            scim_type: scim_type.map(str::to_owned),
            detail: "d".into(),
            retry_after: None,
        };
        assert!(status(400, Some("invalidFilter")).refuses_filter());
        assert!(status(400, None).refuses_filter());
        assert!(status(501, None).refuses_filter());
        assert!(!status(400, Some("tooMany")).refuses_filter());
        assert!(!status(500, None).refuses_filter());
        assert!(!status(403, None).refuses_filter());
        let custom = ScimClientError::FilterRefused {
            filter: r#"externalId eq "a""#.into(),
            source: Box::new(status(400, Some("invalidFilter"))),
        };
        assert_eq!(custom.status(), Some(400));
        assert!(
            custom
                .to_string()
                .contains("a custom filter cannot be replaced by listing users"),
            "{custom}"
        );
    }

    #[test]
    fn missing_credentials_are_a_setup_error() {
        let error = ScimClient::new(
            &TargetSettings {
                authentication: scimbridge_model::AuthenticationMethod::Basic,
                basic_username: Some("admin".into()),
                ..TargetSettings::new("http://127.0.0.1:1")
            },
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("needs target.basic_password"),
            "{error}"
        );
        let error = ScimClient::new(
            &TargetSettings {
                authentication: scimbridge_model::AuthenticationMethod::Oauth2Bearer,
                access_token: Some(Secret::Env("SCIMBRIDGE_TEST_UNSET_VARIABLE".into())),
                ..TargetSettings::new("http://127.0.0.1:1")
            },
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("SCIMBRIDGE_TEST_UNSET_VARIABLE"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let error = ScimClient::new(
            &TargetSettings {
                ca_certificate: Some("/nonexistent/ca.pem".into()),
                ..TargetSettings::new("https://127.0.0.1:1")
            },
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
