//! A SCIM 2.0 client for one target: one keep-alive connection pool, timeouts, bearer token.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use scimbridge_model::{AuthenticationMethod, TargetSettings};
use scimbridge_scim::SCIM_MEDIA_TYPE;
use serde_json::Value;

use crate::secret::{SecretError, resolve};

#[derive(Debug, thiserror::Error)]
pub enum ScimClientError {
    #[error("{method} {url}: HTTP {status}{}: {detail}", scim_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Status {
        method: Method,
        url: String,
        status: u16,
        scim_type: Option<String>,
        detail: String,
    },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: unexpected response: {reason}")]
    InvalidResponse {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("target credentials: {0}")]
    Secret(#[from] SecretError),
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
}

impl ScimClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base_url: String,
    authorization: Option<String>,
}

impl std::fmt::Debug for ScimClient {
    // The authorization header is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ScimClient {
    /// `timeout` bounds each request, from connecting to the last byte of the answer.
    pub fn new(target: &TargetSettings, timeout: Duration) -> Result<ScimClient, ScimClientError> {
        let authorization = match target.authentication {
            AuthenticationMethod::None => None,
            AuthenticationMethod::Oauth2Bearer => {
                let token = target.access_token.as_ref().ok_or_else(|| {
                    ScimClientError::Setup(
                        "authentication oauth2-bearer has no access_token".into(),
                    )
                })?;
                Some(format!("Bearer {}", resolve(token)?))
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .user_agent(concat!("scimbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScimClientError::Setup(e.to_string()))?;
        Ok(ScimClient {
            http,
            base_url: target.scim_url.trim().trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Option<Value>), ScimClientError> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), &url).header(
            header::ACCEPT,
            format!("{SCIM_MEDIA_TYPE}, application/json"),
        );
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, SCIM_MEDIA_TYPE)
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ScimClientError::Transport {
                method: method.clone(),
                url: url.clone(),
                reason: describe_reqwest_error(&e),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ScimClientError::Transport {
                method: method.clone(),
                url: url.clone(),
                reason: describe_reqwest_error(&e),
            })?;
        let json: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        if !status.is_success() {
            let error = json.as_ref().and_then(|j| {
                serde_json::from_value::<scimbridge_scim::error::ScimErrorBody>(j.clone()).ok()
            });
            let (scim_type, detail) = match error {
                Some(body) => (body.scim_type, body.detail),
                None => (None, truncate(&text, 200)),
            };
            return Err(ScimClientError::Status {
                method,
                url,
                status: status.as_u16(),
                scim_type,
                detail,
            });
        }
        if json.is_none() && !text.trim().is_empty() {
            return Err(ScimClientError::InvalidResponse {
                method,
                url,
                reason: format!("body is not JSON: {}", truncate(&text, 200)),
            });
        }
        Ok((status, json))
    }

    /// Finds a user by `userName eq "…"`; returns its `id`.
    pub async fn find_user_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<String>, ScimClientError> {
        let filter = format!("userName eq {}", scimbridge_scim::filter::quote(user_name));
        let (_, body) = self
            .send(
                Method::GET,
                "/Users",
                &[("filter", filter.as_str()), ("attributes", "id,userName")],
                None,
            )
            .await?;
        let invalid = |reason: &str| ScimClientError::InvalidResponse {
            method: Method::GET,
            url: self.url("/Users"),
            reason: reason.to_owned(),
        };
        let body = body.ok_or_else(|| invalid("empty list response"))?;
        let resources = body
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Some targets ignore the filter or compare differently: keep only a real match.
        let matches: Vec<&Value> = resources
            .iter()
            .filter(|r| {
                r.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|u| u.eq_ignore_ascii_case(user_name))
            })
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(
                resource_id(one).ok_or_else(|| invalid("user without id"))?,
            )),
            _ => Err(invalid(&format!(
                "{} users match userName {user_name}",
                matches.len()
            ))),
        }
    }

    /// Creates a user; returns its `id`.
    pub async fn create_user(&self, image: &Value) -> Result<String, ScimClientError> {
        let (_, body) = self.send(Method::POST, "/Users", &[], Some(image)).await?;
        body.as_ref()
            .and_then(resource_id)
            .ok_or_else(|| ScimClientError::InvalidResponse {
                method: Method::POST,
                url: self.url("/Users"),
                reason: "created user has no id".into(),
            })
    }

    pub async fn replace_user(&self, id: &str, image: &Value) -> Result<(), ScimClientError> {
        self.send(
            Method::PUT,
            &format!("/Users/{}", path_segment(id)),
            &[],
            Some(image),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), ScimClientError> {
        self.send(
            Method::DELETE,
            &format!("/Users/{}", path_segment(id)),
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// Proves the URL answers SCIM and the credentials are accepted.
    pub async fn check(&self) -> Result<(), ScimClientError> {
        let (_, body) = self
            .send(Method::GET, "/Users", &[("count", "1")], None)
            .await?;
        let schemas = body
            .as_ref()
            .and_then(|b| b.get("schemas"))
            .and_then(Value::as_array);
        if !schemas.is_some_and(|s| s.iter().any(|v| v == scimbridge_scim::LIST_RESPONSE_SCHEMA)) {
            return Err(ScimClientError::InvalidResponse {
                method: Method::GET,
                url: self.url("/Users"),
                reason: "not a SCIM list response".into(),
            });
        }
        Ok(())
    }
}

fn resource_id(resource: &Value) -> Option<String> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
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

fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    // The source chain holds the useful part ("connection refused", certificate errors).
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        assert_eq!(path_segment("abc-123"), "abc-123");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn base_url_tolerates_a_trailing_slash() {
        let target = TargetSettings {
            scim_url: "http://127.0.0.1:1/scim/v2/".into(),
            scim_version: Default::default(),
            authentication: AuthenticationMethod::None,
            access_token: None,
            unique_user_identifier: Default::default(),
        };
        let client = ScimClient::new(&target, Duration::from_secs(5)).unwrap();
        assert_eq!(client.url("/Users"), "http://127.0.0.1:1/scim/v2/Users");
    }
}
