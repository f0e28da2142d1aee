//! What the console's handlers take from a request, checked once here instead of in each
//! handler: the signed-on session, a form posted with the session's CSRF token, and the
//! connection named in the path.

use std::collections::BTreeMap;

use axum::extract::{Form, FromRequest, FromRequestParts, Path as UrlPath, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_engine::state::full_message;
use scimbridge_model::Connection;

use super::Console;
use super::Flash;
use super::wizard::Draft;

/// The session of the signed-on administrator. `require_session` finds it in front of every
/// page but sign-on; a handler takes it from there.
#[derive(Debug, Clone)]
pub(super) struct SignedOn {
    pub id: String,
    pub csrf: String,
    pub draft: Draft,
    /// What this page shows once (taken from the session).
    pub flash: Flash,
}

impl FromRequestParts<Console> for SignedOn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &Console) -> Result<SignedOn, Response> {
        parts
            .extensions
            .get::<SignedOn>()
            .cloned()
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

/// A form posted from a console page, with the session it was posted in. A form without the
/// session's CSRF token is refused (403): another site's page cannot post one.
pub(super) struct Posted {
    pub signed_on: SignedOn,
    pub form: BTreeMap<String, String>,
}

impl FromRequest<Console> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, console: &Console) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let signed_on = SignedOn::from_request_parts(&mut parts, console).await?;
        let Form(form) = Form::<BTreeMap<String, String>>::from_request(
            Request::from_parts(parts, body),
            console,
        )
        .await
        .map_err(IntoResponse::into_response)?;
        if form.get("csrf") != Some(&signed_on.csrf) {
            return Err((
                StatusCode::FORBIDDEN,
                "the form is stale or came from elsewhere: reload the page",
            )
                .into_response());
        }
        Ok(Posted { signed_on, form })
    }
}

/// The stored connection named in the path (`/console/connections/{name}…`); 404 when there
/// is none.
pub(super) struct StoredConnection(pub Connection);

impl FromRequestParts<Console> for StoredConnection {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Console,
    ) -> Result<StoredConnection, Response> {
        let UrlPath(name) = UrlPath::<String>::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        match console.dir.store.connection(&name).await {
            Ok(Some(connection)) => Ok(StoredConnection(connection)),
            Ok(None) => Err((StatusCode::NOT_FOUND, "no such connection").into_response()),
            Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, full_message(&e)).into_response()),
        }
    }
}
