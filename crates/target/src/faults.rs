//! Faults on demand, for tests of SCIM clients: latency before or after the work, injected error
//! answers (429 or 503 with `Retry-After`, 5xx), and dropped connections; plus a count of the
//! requests received, so that a test can prove a client sent no duplicate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scimbridge_scim::{SCIM_MEDIA_TYPE, ScimErrorBody};

/// What to inject. Counting is per rule, over the requests to `/Users`, `/Groups`, `/Bulk` and
/// `/.search` (discovery is never faulted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Wait this long before handling each request.
    pub latency_before: Duration,
    /// Handle the request, then wait this long before answering: a client that times out meanwhile
    /// does not know the write happened.
    pub latency_after: Duration,
    /// Answer every `n`th request with `status` instead of handling it.
    pub error_every: Option<(u64, u16)>,
    /// Sent as `Retry-After` (seconds) with injected errors.
    pub retry_after: Option<u64>,
    /// Drop every `n`th request: the connection breaks without an answer, nothing is handled.
    pub drop_every: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Mutex<Faults>,
    seen: Mutex<u64>,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl FaultState {
    pub(crate) fn set(&self, faults: Faults) {
        if let Ok(mut current) = self.faults.lock() {
            *current = faults;
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = 0;
        }
    }

    pub(crate) fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Counts the request; returns the faults in force and its number since they were set.
    fn admit(&self, class: String) -> (Faults, u64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry(class).or_default() += 1;
        }
        let number = match self.seen.lock() {
            Ok(mut seen) => {
                *seen += 1;
                *seen
            }
            Err(_) => 0,
        };
        let faults = self.faults.lock().map(|f| f.clone()).unwrap_or_default();
        (faults, number)
    }
}

/// `METHOD /Resource[/{id}]`: the path class a request is counted under.
fn class_of(method: &str, path: &str) -> String {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let resource = parts.next().unwrap_or_default();
    match parts.next() {
        Some(rest) if !rest.is_empty() && !rest.starts_with('.') => {
            format!("{method} /{resource}/{{id}}")
        }
        Some(rest) if !rest.is_empty() => format!("{method} /{resource}/{rest}"),
        _ => format!("{method} /{resource}"),
    }
}

pub(crate) async fn inject(
    State(state): State<std::sync::Arc<FaultState>>,
    request: Request,
    next: Next,
) -> Response {
    let class = class_of(request.method().as_str(), request.uri().path());
    let (faults, number) = state.admit(class);
    let every = |n: u64| n > 0 && number % n == 0;
    if faults.drop_every.is_some_and(every) {
        // Headers go out, then the body fails: the client sees a broken connection.
        let failing = futures_util::stream::once(async {
            Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("injected drop"))
        });
        return (
            StatusCode::OK,
            [(CONTENT_TYPE, SCIM_MEDIA_TYPE)],
            Body::from_stream(failing),
        )
            .into_response();
    }
    if let Some((n, status)) = faults.error_every
        && every(n)
    {
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(CONTENT_TYPE, SCIM_MEDIA_TYPE)],
            ScimErrorBody::new(status, None, "injected fault")
                .to_json()
                .to_string(),
        )
            .into_response();
        if let Some(seconds) = faults.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        return response;
    }
    if !faults.latency_before.is_zero() {
        tokio::time::sleep(faults.latency_before).await;
    }
    let response = next.run(request).await;
    if !faults.latency_after.is_zero() {
        tokio::time::sleep(faults.latency_after).await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_class() {
        assert_eq!(class_of("POST", "/Users"), "POST /Users");
        assert_eq!(class_of("PATCH", "/Groups/abc"), "PATCH /Groups/{id}");
        assert_eq!(class_of("POST", "/Users/.search"), "POST /Users/.search");
        assert_eq!(class_of("POST", "/Bulk"), "POST /Bulk");
    }
}
