//! The web console, served by `scimbridge serve` under `/console`: server-rendered pages
//! (askama) with htmx (vendored, no CDN), for the administrator. A login opens a session (an
//! HttpOnly, SameSite=Strict cookie); every form carries the session's CSRF token.

mod dashboard;
mod data_stores;
mod extract;
mod settings;
pub mod wizard;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rand::RngCore;
use scimbridge_engine::source::source_of;
use scimbridge_engine::state::{AdminStore, ConfigurationStore};
use scimbridge_model::{ChannelKey, Connection, ScimField};

use crate::auth::Attempts;
use crate::context::DataDir;
use crate::ops::check::check_connection;
use crate::ops::configure::{refusal_problems, save_objects};
use crate::ops::delete;
use crate::ops::mapping::{MapOutcome, map_entry};
use crate::ops::service::RunNow;
use crate::ops::status::{channel_status, format_utc};
use extract::{Posted, SignedOn, StoredConnection};
use wizard::{Draft, STEPS, step_index};

const COOKIE: &str = "scimbridge_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
/// Entries of the data store read for the attribute names the mapping step offers.
const ATTRIBUTE_SAMPLE: u32 = 20;

#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Instant,
    draft: Draft,
    /// What the next page shows once (kept here, not in the URL, so that a reload or a shared
    /// link does not show it again).
    flash: Flash,
}

/// A message for the next page: what was done, or what was refused.
#[derive(Debug, Clone, Default)]
pub(super) struct Flash {
    pub message: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Console {
    dir: Arc<DataDir>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Failed sign-ons per address, shared with the API.
    attempts: Attempts,
    /// The running channels' "run now" senders, shared with the API.
    run_now: RunNow,
}

impl Console {
    pub fn new(dir: Arc<DataDir>, attempts: Attempts, run_now: RunNow) -> Console {
        Console {
            dir,
            sessions: Arc::default(),
            attempts,
            run_now,
        }
    }

    pub fn router(self) -> Router {
        let private = Router::new()
            .route(
                "/console",
                get(|| async { Redirect::to("/console/connections") }),
            )
            .route("/console/connections", get(connections))
            .route("/console/connections/{name}", get(dashboard::dashboard))
            .route("/console/connections/{name}/run", post(dashboard::run))
            .route("/console/connections/{name}/toggle", post(toggle))
            .route(
                "/console/connections/{name}/delete",
                post(delete_connection),
            )
            .route(
                "/console/connections/{name}/held",
                post(dashboard::decide_held),
            )
            .route("/console/connections/{name}/edit", post(edit))
            .route(
                "/console/connections/{name}/channels/{channel}/edit",
                post(edit_channel),
            )
            .route(
                "/console/connections/{name}/channels/new",
                post(add_channel),
            )
            .route(
                "/console/wizard",
                get(|| async { Redirect::to("/console/wizard/template") }),
            )
            .route("/console/wizard/new", post(new_wizard))
            .route(
                "/console/wizard/{step}",
                get(wizard_step).post(wizard_submit),
            )
            .route("/console/wizard/target/test", post(test_connection))
            .route("/console/wizard/mapping/preview", post(preview_mapping))
            .route("/console/data-stores", get(data_stores::list))
            .route("/console/data-stores/new", get(data_stores::new_form))
            .route("/console/data-stores/save", post(data_stores::save))
            .route("/console/data-stores/test", post(data_stores::test))
            .route(
                "/console/data-stores/{name}/edit",
                get(data_stores::edit_form),
            )
            .route(
                "/console/data-stores/{name}/delete",
                post(data_stores::delete),
            )
            .route("/console/logout", post(logout))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                require_session,
            ));
        Router::new()
            .route("/console/login", get(login_page).post(login))
            .route("/console/assets/htmx.min.js", get(htmx))
            .merge(private)
            .with_state(self)
    }

    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = session_cookie(headers)?;
        let mut sessions = self.sessions.lock().ok()?;
        sessions.retain(|_, s| s.expires > Instant::now());
        sessions.get(&id).map(|s| (id, s.clone()))
    }

    /// Redirects to `path`, whose page then shows `text` once: a `message`, or an `error`.
    fn redirect_with(&self, id: &str, path: &str, kind: FlashKind, text: String) -> Response {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(session) = sessions.get_mut(id)
        {
            match kind {
                FlashKind::Message => session.flash.message = Some(text),
                FlashKind::Error => session.flash.error = Some(text),
            }
        }
        Redirect::to(path).into_response()
    }

    fn take_flash(&self, id: &str) -> Flash {
        self.sessions
            .lock()
            .ok()
            .and_then(|mut sessions| {
                sessions
                    .get_mut(id)
                    .map(|session| std::mem::take(&mut session.flash))
            })
            .unwrap_or_default()
    }

    fn update_draft(&self, id: &str, update: impl FnOnce(&mut Draft)) {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(session) = sessions.get_mut(id)
        {
            update(&mut session.draft);
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) enum FlashKind {
    Message,
    Error,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Every page but sign-on needs a session: without one, the sign-on page.
async fn require_session(
    State(console): State<Console>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some((id, session)) = console.session(request.headers()) else {
        return Redirect::to("/console/login").into_response();
    };
    // A page shows the flash once; a background (htmx) request leaves it for the page.
    let flash = if request.headers().contains_key("hx-request") {
        Flash::default()
    } else {
        console.take_flash(&id)
    };
    request.extensions_mut().insert(SignedOn {
        id,
        csrf: session.csrf,
        draft: session.draft,
        flash,
    });
    next.run(request).await
}

fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("page error: {e}"),
        )
            .into_response(),
    }
}

async fn htmx() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        HTMX,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    error: Option<String>,
    /// No administrator is set: the page says how to set one instead of refusing every try
    /// (without the data directory's path, which is not for visitors; `serve` prints it).
    no_administrator: bool,
}

impl LoginPage {
    async fn new(console: &Console, error: Option<String>) -> LoginPage {
        LoginPage {
            error,
            no_administrator: matches!(console.dir.store.admin_account().await, Ok(None)),
        }
    }
}

async fn login_page(State(console): State<Console>) -> Response {
    render(&LoginPage::new(&console, None).await)
}

async fn login(
    State(console): State<Console>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let account = console.dir.store.admin_account().await.ok().flatten();
    let hash = account
        .as_ref()
        .filter(|a| a.username == username)
        .map(|a| a.password_hash.as_str());
    let refusal = match console
        .attempts
        .check_password(client.ip(), &username, &password, hash)
        .await
    {
        Ok(true) => None,
        Ok(false) => Some((StatusCode::UNAUTHORIZED, "Wrong user name or password.")),
        Err(_) => Some((
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong passwords for this user name from this address: wait a minute.",
        )),
    };
    if let Some((status, error)) = refusal {
        let mut response = render(&LoginPage::new(&console, Some(error.into())).await);
        *response.status_mut() = status;
        return response;
    }
    let id = random_hex();
    if let Ok(mut sessions) = console.sessions.lock() {
        sessions.insert(
            id.clone(),
            Session {
                csrf: random_hex(),
                expires: Instant::now() + SESSION_LIFETIME,
                draft: Draft::new(),
                flash: Flash::default(),
            },
        );
    }
    let mut response = Redirect::to("/console/connections").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(console): State<Console>, posted: Posted) -> Response {
    if let Ok(mut sessions) = console.sessions.lock() {
        sessions.remove(&posted.signed_on.id);
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "scimbridge_session=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0",
        ),
    );
    response
}

struct ConnectionRow {
    name: String,
    active: bool,
    channels: usize,
    target: String,
    /// Over its channels: a last cycle that found the target down, failed records, held
    /// operations, and when the latest cycle ended (or started, when it has not ended).
    target_down: bool,
    failed: u64,
    held: usize,
    last_cycle: Option<String>,
}

#[derive(Template)]
#[template(path = "console/connections.html")]
struct ConnectionsPage {
    csrf: String,
    rows: Vec<ConnectionRow>,
    message: Option<String>,
    error: Option<String>,
}

async fn connections(State(console): State<Console>, signed_on: SignedOn) -> Response {
    let connections = console.dir.store.connections().await.unwrap_or_default();
    let mut rows = Vec::new();
    for connection in &connections {
        let mut row = ConnectionRow {
            name: connection.name.clone(),
            active: connection.active,
            channels: connection.channels.len(),
            target: connection.target.scim_url.clone(),
            target_down: false,
            failed: 0,
            held: 0,
            last_cycle: None,
        };
        let mut latest = None;
        for channel in &connection.channels {
            let key = ChannelKey::new(&connection.name, &channel.name);
            let Ok(status) = channel_status(&console.dir.store, &key).await else {
                continue;
            };
            row.failed += status.counts.failed;
            row.held += status.held;
            row.target_down |= status.target_down.is_some();
            if let Some(cycle) = status.last_cycle {
                let at = cycle.finished_at_ms.unwrap_or(cycle.started_at_ms);
                if latest.is_none_or(|seen| at > seen) {
                    latest = Some(at);
                }
            }
        }
        row.last_cycle = latest.map(format_utc);
        rows.push(row);
    }
    render(&ConnectionsPage {
        csrf: signed_on.csrf,
        rows,
        message: signed_on.flash.message,
        error: signed_on.flash.error,
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Saves a connection as `apply` does; the problems, one per line, when refused.
async fn save(console: &Console, connection: Connection) -> Result<(), Vec<String>> {
    save_objects(&console.dir.store, Vec::new(), vec![connection])
        .await
        .map(|_| ())
        .map_err(|error| refusal_problems(&error))
}

async fn toggle(
    State(console): State<Console>,
    StoredConnection(mut connection): StoredConnection,
    posted: Posted,
) -> Response {
    let id = &posted.signed_on.id;
    let name = connection.name.clone();
    connection.active = !connection.active;
    let state = if connection.active {
        "active"
    } else {
        "inactive"
    };
    match save(&console, connection).await {
        Ok(()) => console.redirect_with(
            id,
            "/console/connections",
            FlashKind::Message,
            format!("{name} is {state}."),
        ),
        Err(problems) => console.redirect_with(
            id,
            "/console/connections",
            FlashKind::Error,
            settings::in_console_words(&format!("{name} stays as it was: {}", problems.join("; "))),
        ),
    }
}

async fn delete_connection(
    State(console): State<Console>,
    UrlPath(name): UrlPath<String>,
    posted: Posted,
) -> Response {
    let (kind, text) = match delete::delete_connection(&console.dir.store, &name).await {
        Ok(()) => (
            FlashKind::Message,
            format!("{name} deleted, with its records and history."),
        ),
        Err(refused) => (
            FlashKind::Error,
            format!("{name} was not deleted: {refused}."),
        ),
    };
    console.redirect_with(&posted.signed_on.id, "/console/connections", kind, text)
}

/// What the mapping step's attribute names were read from: the data store and the user
/// object class, so that either changing reads them again.
fn sample_key(draft: &Draft) -> String {
    format!("{} / {}", draft.data_store, draft.user_object_class)
}

/// One of a step's other settings, as the form shows it.
struct MoreField {
    field: String,
    label: &'static str,
    /// `text`, `number` or `choice` (flags are choices: default, yes, no).
    input: &'static str,
    choices: Vec<(&'static str, &'static str)>,
    value: String,
    problem: String,
}

fn more_fields(
    step: &str,
    draft: &Draft,
    problems: &BTreeMap<&'static str, String>,
) -> Vec<MoreField> {
    settings::of_step(step)
        .map(|setting| {
            let (input, choices) = match setting.kind {
                settings::Kind::Text => ("text", Vec::new()),
                settings::Kind::Number { .. } => ("number", Vec::new()),
                settings::Kind::Flag => (
                    "choice",
                    vec![("", "Default"), ("true", "Yes"), ("false", "No")],
                ),
                settings::Kind::Choice(choices) => ("choice", choices.to_vec()),
            };
            MoreField {
                field: setting.field(),
                label: setting.label,
                input,
                choices,
                value: draft
                    .more
                    .get(&setting.field())
                    .cloned()
                    .unwrap_or_default(),
                problem: problems.get(setting.key).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

struct StepLink {
    name: &'static str,
    title: &'static str,
    current: bool,
    done: bool,
}

struct FieldRow {
    name: &'static str,
    label: &'static str,
    required: bool,
    value: String,
    options: wizard::FieldOptions,
}

#[derive(Template)]
#[template(path = "console/wizard.html")]
struct WizardPage {
    csrf: String,
    step: &'static str,
    title: &'static str,
    steps: Vec<StepLink>,
    draft: Draft,
    problems: BTreeMap<&'static str, String>,
    /// Attribute names of a few entries of the channel's data store, offered while mapping.
    attribute_names: Vec<String>,
    /// The step's other settings, under "More settings".
    more: Vec<MoreField>,
    /// The custom schema extension rows: the draft's, and two empty ones to add.
    extension_rows: Vec<(usize, wizard::ExtensionRow)>,
    /// What the page before said was done (a data store saved from the Source step).
    message: Option<String>,
    data_stores: Vec<String>,
    fields: Vec<FieldRow>,
    save_problems: Vec<String>,
    first: bool,
    last: bool,
    algorithms: &'static [(&'static str, &'static str)],
    status_algorithms: &'static [(&'static str, &'static str)],
}

/// The change detection methods, as the Source Settings step offers them.
const ALGORITHMS: &[(&str, &str)] = &[
    ("", "Default of the LDAP type"),
    ("auto", "Auto (the best the server offers)"),
    ("content-sync", "Content synchronization (RFC 4533)"),
    ("dirsync", "Active Directory DirSync"),
    ("active-directory-usn", "Active Directory USN"),
    ("timestamp", "Timestamp"),
    ("timestamp-no-negation", "Timestamp, no negation"),
    ("full-scan", "Full scan"),
];

const STATUS_ALGORITHMS: &[(&str, &str)] = &[
    ("", "Default"),
    ("none", "None"),
    ("active-directory", "Active Directory (userAccountControl)"),
    ("flag", "Flag"),
];

impl WizardPage {
    fn problem(&self, field: &str) -> String {
        self.problems.get(field).cloned().unwrap_or_default()
    }

    fn has_secret(&self, field: &str) -> bool {
        self.draft.has_secret(field)
    }

    /// Whether a field's stored mapping (an expression or a default) is kept as it is.
    fn kept(&self, field: &str) -> bool {
        self.draft.kept_mappings.contains(field)
    }
}

async fn wizard_page(
    console: &Console,
    signed_on: &SignedOn,
    index: usize,
    draft: Draft,
    problems: BTreeMap<&'static str, String>,
    save_problems: Vec<String>,
) -> Response {
    let (step, title) = STEPS[index];
    let stored_data_stores = console.dir.store.data_stores().await.unwrap_or_default();
    // The mapping step offers the attribute names of a few entries of the chosen data store;
    // one it cannot read offers none (its Test says why).
    // A new channel's mapping starts from its directory type's usual attributes.
    let mut draft = draft;
    if step == "mapping"
        && draft.mapping.is_empty()
        && draft.mapping_options.is_empty()
        && draft.kept_mappings.is_empty()
        && let Some(data_store) = stored_data_stores
            .iter()
            .find(|d| d.name == draft.data_store)
    {
        draft.mapping = wizard::default_mapping(data_store.ldap_type());
        let mapping = draft.mapping.clone();
        console.update_draft(&signed_on.id, |stored| stored.mapping = mapping);
    }
    let cached = draft
        .attribute_names
        .as_ref()
        .filter(|(read_from, _)| *read_from == sample_key(&draft))
        .map(|(_, names)| names.clone());
    let attribute_names = match (
        cached,
        stored_data_stores
            .iter()
            .find(|d| step == "mapping" && d.name == draft.data_store),
    ) {
        (Some(names), _) => names,
        (None, Some(data_store)) => {
            let names = source_of(data_store)
                // The channel's own user object class, when its Source Settings name one.
                .sample(
                    ATTRIBUTE_SAMPLE,
                    Some(draft.user_object_class.as_str()).filter(|c| !c.is_empty()),
                )
                .await
                .map(|sample| sample.attribute_names())
                .unwrap_or_default();
            // A read that found nothing (the directory down) is tried again next time.
            if !names.is_empty() {
                let read = (sample_key(&draft), names.clone());
                console.update_draft(&signed_on.id, |stored| stored.attribute_names = Some(read));
            }
            names
        }
        (None, None) => Vec::new(),
    };
    let data_stores = stored_data_stores.into_iter().map(|d| d.name).collect();
    let fields = ScimField::ALL
        .iter()
        .map(|field| FieldRow {
            name: field.name(),
            label: field.label(),
            required: field.required(),
            value: draft.mapping.get(field.name()).cloned().unwrap_or_default(),
            options: draft
                .mapping_options
                .get(field.name())
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    let steps = STEPS
        .iter()
        .enumerate()
        .map(|(i, (name, title))| StepLink {
            name,
            title,
            current: i == index,
            done: i < index,
        })
        .collect();
    let more = more_fields(step, &draft, &problems);
    let extension_rows = draft
        .extensions
        .iter()
        .cloned()
        .chain([
            wizard::ExtensionRow::default(),
            wizard::ExtensionRow::default(),
        ])
        .enumerate()
        .collect();
    let save_problems: Vec<String> = save_problems
        .iter()
        .map(|p| settings::in_console_words(p))
        .collect();
    let mut response = render(&WizardPage {
        csrf: signed_on.csrf.clone(),
        step,
        title,
        steps,
        draft,
        problems: problems.clone(),
        attribute_names,
        more,
        extension_rows,
        message: signed_on.flash.message.clone(),
        data_stores,
        fields,
        save_problems: save_problems.clone(),
        first: index == 0,
        last: index + 1 == STEPS.len(),
        algorithms: ALGORITHMS,
        status_algorithms: STATUS_ALGORITHMS,
    });
    if !problems.is_empty() || !save_problems.is_empty() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

async fn new_wizard(State(console): State<Console>, posted: Posted) -> Response {
    console.update_draft(&posted.signed_on.id, |draft| *draft = Draft::new());
    Redirect::to("/console/wizard/template").into_response()
}

async fn wizard_step(
    State(console): State<Console>,
    signed_on: SignedOn,
    UrlPath(step): UrlPath<String>,
) -> Response {
    let Some(index) = step_index(&step) else {
        return (StatusCode::NOT_FOUND, "no such step").into_response();
    };
    let draft = signed_on.draft.clone();
    wizard_page(
        &console,
        &signed_on,
        index,
        draft,
        BTreeMap::new(),
        Vec::new(),
    )
    .await
}

async fn wizard_submit(
    State(console): State<Console>,
    UrlPath(step): UrlPath<String>,
    Posted { signed_on, form }: Posted,
) -> Response {
    let Some(index) = step_index(&step) else {
        return (StatusCode::NOT_FOUND, "no such step").into_response();
    };
    let mut draft = signed_on.draft.clone();
    draft.take(&step, &form);
    console.update_draft(&signed_on.id, |stored| *stored = draft.clone());
    if form.contains_key("back") {
        let previous = STEPS[index.saturating_sub(1)].0;
        return Redirect::to(&format!("/console/wizard/{previous}")).into_response();
    }
    let problems = draft.problems(&step);
    if !problems.is_empty() {
        return wizard_page(&console, &signed_on, index, draft, problems, Vec::new()).await;
    }
    if index + 1 < STEPS.len() {
        let next = STEPS[index + 1].0;
        return Redirect::to(&format!("/console/wizard/{next}")).into_response();
    }
    // Activation & Summary: Save.
    if let Some(problem) = STEPS
        .iter()
        .map(|(name, _)| draft.problems(name))
        .find(|p| !p.is_empty())
    {
        let problems: Vec<String> = problem.into_values().collect();
        return wizard_page(
            &console,
            &signed_on,
            index,
            draft,
            BTreeMap::new(),
            problems,
        )
        .await;
    }
    // Editing: the stored connection is the base, so what the wizard does not show is kept.
    let stored = console
        .dir
        .store
        .connection(draft.editing.as_deref().unwrap_or(&draft.name))
        .await
        .ok()
        .flatten();
    let base = match (&draft.editing, stored) {
        (Some(_), Some(stored)) => Some(stored),
        (Some(name), None) => {
            let problem = format!("Connection {name} no longer exists.");
            return wizard_page(
                &console,
                &signed_on,
                index,
                draft,
                BTreeMap::new(),
                vec![problem],
            )
            .await;
        }
        (None, Some(_)) => {
            let problem = format!("A connection named {} exists already.", draft.name);
            return wizard_page(
                &console,
                &signed_on,
                index,
                draft,
                BTreeMap::new(),
                vec![problem],
            )
            .await;
        }
        (None, None) => None,
    };
    let connection = match draft.connection(base.as_ref()) {
        Ok(connection) => connection,
        Err(problem) => {
            return wizard_page(
                &console,
                &signed_on,
                index,
                draft,
                BTreeMap::new(),
                vec![problem],
            )
            .await;
        }
    };
    let name = connection.name.clone();
    match save(&console, connection).await {
        Ok(()) => {
            console.update_draft(&signed_on.id, |stored| *stored = Draft::new());
            console.redirect_with(
                &signed_on.id,
                &format!("/console/connections/{}", percent(&name)),
                FlashKind::Message,
                format!("{name} saved."),
            )
        }
        Err(problems) => {
            wizard_page(
                &console,
                &signed_on,
                index,
                draft,
                BTreeMap::new(),
                problems,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "console/test_result.html")]
struct TestResult {
    ok: bool,
    text: String,
}

#[derive(Template)]
#[template(path = "console/mapping_preview.html")]
struct MappingPreview {
    ok: bool,
    text: String,
    /// The SCIM user, as JSON (masked fields hidden).
    image: String,
}

/// The mapping step's Preview: one entry of the chosen data store through the mapping as typed.
async fn preview_mapping(
    State(console): State<Console>,
    Posted { signed_on, form }: Posted,
) -> Response {
    let mut draft = signed_on.draft.clone();
    draft.take("mapping", &form);
    console.update_draft(&signed_on.id, |stored| *stored = draft.clone());
    let failed = |text: String| {
        render(&MappingPreview {
            ok: false,
            text,
            image: String::new(),
        })
    };
    let dn = form
        .get("preview_entry")
        .map(|d| d.trim())
        .unwrap_or_default();
    if dn.is_empty() {
        return failed("Give the DN of an entry to preview.".into());
    }
    let Some(data_store) = console
        .dir
        .store
        .data_stores()
        .await
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.name == draft.data_store)
    else {
        return failed("Choose the channel's data store first (Source).".into());
    };
    // Only the channel matters here; the steps not filled yet get stand-ins.
    let mut probe = draft.clone();
    for (value, stand_in) in [
        (&mut probe.name, "preview"),
        (&mut probe.channel_name, "preview"),
        (&mut probe.scim_url, "http://preview.invalid"),
        (&mut probe.base_dn, dn),
    ] {
        if value.is_empty() {
            *value = stand_in.to_owned();
        }
    }
    probe.active = false;
    let stored = match &draft.editing {
        Some(name) => console.dir.store.connection(name).await.ok().flatten(),
        None => None,
    };
    let connection = match probe.connection(stored.as_ref()) {
        Ok(connection) => connection,
        Err(problem) => return failed(problem),
    };
    // The channel as typed (the wizard may edit any channel of the connection).
    let Some(channel) = connection
        .channels
        .iter()
        .find(|c| c.name == probe.channel_name)
    else {
        return failed("The connection has no such channel.".into());
    };
    // A preview is a page: a password or a create-only value (a first password) is hidden
    // whether or not the field asks for it.
    let mut channel = channel.clone();
    for (field, mapping) in channel.attribute_mapping.iter_mut() {
        if *field == ScimField::Password || mapping.create_only {
            mapping.masked = true;
        }
    }
    for mapping in channel.extension_mapping.values_mut() {
        if mapping.create_only {
            mapping.masked = true;
        }
    }
    match map_entry(&data_store, &channel, dn).await {
        Ok(MapOutcome::Image { image, outside, .. }) => render(&MappingPreview {
            ok: true,
            text: match outside {
                Some(base_dn) => format!(
                    "This entry would be sent as below, but it is not below the base DN {base_dn}: cycles leave it out."
                ),
                None => "This entry would be sent as:".into(),
            },
            image: serde_json::to_string_pretty(&image).unwrap_or_default(),
        }),
        Ok(MapOutcome::NotKeyed { reason, .. }) => {
            failed(format!("This entry cannot be provisioned: {reason}"))
        }
        Ok(MapOutcome::Unmappable { reason, .. }) => {
            failed(format!("This entry cannot be mapped: {reason}"))
        }
        Err(e) => failed(format!("{e:#}")),
    }
}

/// "Test connection" on the Target step: the target check of `scimbridge check`, on the draft.
async fn test_connection(
    State(console): State<Console>,
    Posted { signed_on, form }: Posted,
) -> Response {
    let mut draft = signed_on.draft.clone();
    draft.take("target", &form);
    console.update_draft(&signed_on.id, |stored| *stored = draft.clone());
    // The rest of the connection does not matter to the target check.
    let mut probe = draft.clone();
    if probe.name.is_empty() {
        probe.name = "new connection".into();
    }
    probe.channel_name = "test".into();
    probe.data_store = "test".into();
    probe.base_dn = "dc=test".into();
    probe
        .mapping
        .entry("userName".into())
        .or_insert_with(|| "uid".into());
    // Editing: the stored connection's secrets count, as Save would keep them.
    let stored = match &draft.editing {
        Some(name) => console.dir.store.connection(name).await.ok().flatten(),
        None => None,
    };
    let result = match probe.connection(stored.as_ref()) {
        Ok(connection) => match check_connection(&connection).await {
            Ok(report) => TestResult {
                ok: true,
                text: format!(
                    "Connection succeeded: {} answered{}.",
                    report.users_url,
                    report
                        .users
                        .map(|n| format!(" ({n} users)"))
                        .unwrap_or_default()
                ),
            },
            Err(e) => TestResult {
                ok: false,
                text: settings::in_console_words(&format!("{e:#}")),
            },
        },
        Err(e) => TestResult { ok: false, text: e },
    };
    render(&result)
}

async fn edit_channel(
    State(console): State<Console>,
    UrlPath((name, channel)): UrlPath<(String, String)>,
    posted: Posted,
) -> Response {
    open_channel(console, name, Some(channel), posted).await
}

async fn add_channel(
    State(console): State<Console>,
    UrlPath(name): UrlPath<String>,
    posted: Posted,
) -> Response {
    open_channel(console, name, None, posted).await
}

/// Opens the wizard on one channel of a stored connection (`None`: a new one), at Channel Info.
async fn open_channel(
    console: Console,
    name: String,
    channel: Option<String>,
    posted: Posted,
) -> Response {
    let Ok(Some(connection)) = console.dir.store.connection(&name).await else {
        return (StatusCode::NOT_FOUND, "no such connection").into_response();
    };
    let index = match channel {
        // Add Channel has a route of its own: no channel name can stand for it.
        None => connection.channels.len(),
        Some(channel) => match connection.channels.iter().position(|c| c.name == channel) {
            Some(index) => index,
            None => return (StatusCode::NOT_FOUND, "no such channel").into_response(),
        },
    };
    console.update_draft(&posted.signed_on.id, |draft| {
        *draft = Draft::of_channel(&connection, index)
    });
    Redirect::to("/console/wizard/channel").into_response()
}

/// Opens the wizard on a stored connection, at its summary.
async fn edit(
    State(console): State<Console>,
    StoredConnection(connection): StoredConnection,
    posted: Posted,
) -> Response {
    console.update_draft(&posted.signed_on.id, |draft| {
        *draft = Draft::of(&connection)
    });
    Redirect::to("/console/wizard/summary").into_response()
}
