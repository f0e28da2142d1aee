//! Target authentication: the `Authorization` header of each request, including OAuth 2 client
//! credentials tokens fetched, cached and renewed here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{self, HeaderValue};
use scimbridge_model::{AuthenticationMethod, ClientAuthentication, TargetSettings};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::secret::{SecretError, resolve};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("target credentials: {0}")]
    Secret(#[from] SecretError),
    #[error("target.authentication = \"{method}\" needs target.{field}")]
    Missing {
        method: &'static str,
        field: &'static str,
    },
    #[error("the target credentials contain characters not allowed in an HTTP header")]
    InvalidHeader,
    #[error("token endpoint {endpoint}: {reason}")]
    TokenEndpoint { endpoint: String, reason: String },
}

/// How each request to the target is authenticated.
pub(crate) enum Authenticator {
    None,
    /// Basic credentials or a static bearer token: the same header every time.
    Fixed(HeaderValue),
    ClientCredentials(TokenSource),
}

impl Authenticator {
    pub(crate) fn new(
        target: &TargetSettings,
        http: reqwest::Client,
    ) -> Result<Authenticator, AuthError> {
        let method = target.authentication.name();
        let header_type = target.authorization_header_type.trim();
        match target.authentication {
            AuthenticationMethod::None => Ok(Authenticator::None),
            AuthenticationMethod::Basic => {
                let username = target
                    .basic_username
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .ok_or(AuthError::Missing {
                        method,
                        field: "basic_username",
                    })?;
                let password =
                    resolve(target.basic_password.as_ref().ok_or(AuthError::Missing {
                        method,
                        field: "basic_password",
                    })?)?;
                Ok(Authenticator::Fixed(basic_header(username, &password)?))
            }
            AuthenticationMethod::Oauth2Bearer => {
                let token = resolve(target.access_token.as_ref().ok_or(AuthError::Missing {
                    method,
                    field: "access_token",
                })?)?;
                Ok(Authenticator::Fixed(sensitive(&format!(
                    "{header_type} {token}"
                ))?))
            }
            AuthenticationMethod::Oauth2ClientCredentials => {
                let endpoint = target.token_endpoint.clone().ok_or(AuthError::Missing {
                    method,
                    field: "token_endpoint",
                })?;
                let client_id = target.client_id.clone().filter(|c| !c.is_empty()).ok_or(
                    AuthError::Missing {
                        method,
                        field: "client_id",
                    },
                )?;
                let client_secret =
                    resolve(target.client_secret.as_ref().ok_or(AuthError::Missing {
                        method,
                        field: "client_secret",
                    })?)?;
                Ok(Authenticator::ClientCredentials(TokenSource {
                    http,
                    endpoint,
                    client_id,
                    client_secret,
                    scopes: target.scope_list().join(" "),
                    client_authentication: target.client_authentication,
                    header_type: header_type.to_owned(),
                    cached: Mutex::new(None),
                    requests: AtomicU64::new(0),
                }))
            }
        }
    }

    /// The header for the next request, fetching a token first when needed.
    pub(crate) async fn header(&self) -> Result<Option<HeaderValue>, AuthError> {
        match self {
            Authenticator::None => Ok(None),
            Authenticator::Fixed(value) => Ok(Some(value.clone())),
            Authenticator::ClientCredentials(source) => source.header().await.map(Some),
        }
    }

    /// After a 401: drops the token that was refused so the next request fetches a new one.
    /// Returns whether a retry can help (only a fetched token can be renewed).
    pub(crate) async fn refused(&self, used: Option<&HeaderValue>) -> bool {
        match self {
            Authenticator::ClientCredentials(source) => {
                let mut cached = source.cached.lock().await;
                if cached.as_ref().map(|c| &c.header) == used {
                    *cached = None;
                }
                true
            }
            _ => false,
        }
    }

    /// How many tokens were requested from the token endpoint.
    pub(crate) fn token_requests(&self) -> u64 {
        match self {
            Authenticator::ClientCredentials(source) => source.requests.load(Ordering::Relaxed),
            _ => 0,
        }
    }
}

pub(crate) struct TokenSource {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    scopes: String,
    client_authentication: ClientAuthentication,
    header_type: String,
    cached: Mutex<Option<CachedToken>>,
    requests: AtomicU64,
}

struct CachedToken {
    header: HeaderValue,
    /// When to fetch a new token: somewhat before the token expires, so a request never
    /// leaves with a token about to lapse.
    renew_at: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    /// RFC 6749 says a number; some servers send a string.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    async fn header(&self) -> Result<HeaderValue, AuthError> {
        // Holding the lock while fetching makes concurrent requests wait for one token
        // instead of each asking for its own.
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.header.clone());
        }
        let token = self.fetch().await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch(&self) -> Result<CachedToken, AuthError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let failed = |reason: String| AuthError::TokenEndpoint {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if !self.scopes.is_empty() {
            form.push(("scope", &self.scopes));
        }
        let mut request = self
            .http
            .post(&self.endpoint)
            .header(header::ACCEPT, "application/json");
        match self.client_authentication {
            ClientAuthentication::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts are form-encoded before going into Basic.
                let header = basic_header(
                    &form_encode(&self.client_id),
                    &form_encode(&self.client_secret),
                )?;
                request = request.header(header::AUTHORIZATION, header);
            }
            ClientAuthentication::ClientSecretPost => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.client_secret));
            }
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let started = Instant::now();
        let response = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| failed(super::scim_client::describe_reqwest_error(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| failed(super::scim_client::describe_reqwest_error(&e)))?;
        if !status.is_success() {
            let reason = match serde_json::from_str::<TokenErrorResponse>(&text) {
                Ok(error) if error.error == "invalid_client" => format!(
                    "HTTP {}: the client id or client secret was refused (invalid_client{})",
                    status.as_u16(),
                    error
                        .error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                Ok(error) => format!(
                    "HTTP {}: {}{}",
                    status.as_u16(),
                    error.error,
                    error
                        .error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                Err(_) => format!(
                    "HTTP {}: not an OAuth 2 token endpoint answer",
                    status.as_u16()
                ),
            };
            return Err(failed(reason));
        }
        let token: TokenResponse = serde_json::from_str(&text)
            .map_err(|_| failed("the answer holds no access_token".into()))?;
        if token.access_token.is_empty() {
            return Err(failed("the answer holds an empty access_token".into()));
        }
        if let Some(token_type) = &token.token_type
            && !token_type.eq_ignore_ascii_case("bearer")
        {
            tracing::warn!(endpoint = %self.endpoint, %token_type, "token type is not Bearer; sending it with the configured header type");
        }
        let lifetime = token
            .expires_in
            .as_ref()
            .and_then(expires_in_seconds)
            .map(Duration::from_secs);
        tracing::debug!(endpoint = %self.endpoint, lifetime_s = lifetime.map(|l| l.as_secs()), "access token obtained");
        Ok(CachedToken {
            header: sensitive(&format!("{} {}", self.header_type, token.access_token))?,
            renew_at: lifetime.map(|lifetime| started + lifetime - renewal_margin(lifetime)),
        })
    }
}

/// Renew a fifth of the lifetime early, at most a minute early.
fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(60))
}

fn expires_in_seconds(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn basic_header(username: &str, password: &str) -> Result<HeaderValue, AuthError> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(&format!("Basic {encoded}"))
}

/// A header value that hyper will not print.
fn sensitive(value: &str) -> Result<HeaderValue, AuthError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| AuthError::InvalidHeader)?;
    header.set_sensitive(true);
    Ok(header)
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_read_as_number_or_string() {
        assert_eq!(expires_in_seconds(&serde_json::json!(3600)), Some(3600));
        assert_eq!(expires_in_seconds(&serde_json::json!("3600")), Some(3600));
        assert_eq!(expires_in_seconds(&serde_json::json!(" 90 ")), Some(90));
        assert_eq!(expires_in_seconds(&serde_json::json!(12.5)), Some(12));
        assert_eq!(expires_in_seconds(&serde_json::json!("soon")), None);
        assert_eq!(expires_in_seconds(&serde_json::json!(-5)), None);
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renewal_margin(Duration::from_secs(3600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(form_encode("a b&c=d:é"), "a+b%26c%3Dd%3A%C3%A9");
    }

    #[test]
    fn basic_header_is_base64_of_user_colon_password() {
        let header = basic_header("admin", "pa:ss").unwrap();
        assert_eq!(header.to_str().unwrap(), "Basic YWRtaW46cGE6c3M=");
        assert!(header.is_sensitive());
    }
}
