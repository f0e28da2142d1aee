//! "Manage Data Stores" in the console, as PingFederate offers it from the Source step: the
//! list, a form per kind (LDAP directory or LDIF file) with every setting of the configuration
//! file, a Test that binds and reads a few entries, and Delete when no channel reads it.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use scimbridge_engine::source::source_of;
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::{DataStore, DataStoreKind, LdapSettings};
use serde_json::{Map, Value, json};

use super::extract::{Posted, SignedOn};
use super::{Console, FlashKind, render};
use crate::ops::configure::{refusal_problems, save_objects};
use crate::ops::delete::delete_data_store;

/// Entries the Test reads and shows.
const TEST_SAMPLE: u32 = 5;

/// Where a data store page was opened from: the connection wizard's Source step goes back
/// there, with the data store saved chosen.
#[derive(Debug, serde::Deserialize, Default)]
pub(super) struct Opened {
    from: Option<String>,
    kind: Option<String>,
}

impl Opened {
    fn opened_from_wizard(&self) -> bool {
        self.from.as_deref() == Some("wizard")
    }
}

struct DataStoreRow {
    name: String,
    kind: &'static str,
    location: String,
    readers: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/data_stores.html")]
struct ListPage {
    csrf: String,
    rows: Vec<DataStoreRow>,
    from_wizard: bool,
    message: Option<String>,
    error: Option<String>,
}

pub(super) async fn list(
    State(console): State<Console>,
    signed_on: SignedOn,
    Query(opened): Query<Opened>,
) -> Response {
    let store = &console.dir.store;
    let (Ok(data_stores), Ok(connections)) = (store.data_stores().await, store.connections().await)
    else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot read the state store",
        )
            .into_response();
    };
    let rows = data_stores
        .iter()
        .map(|d| DataStoreRow {
            name: d.name.clone(),
            kind: kind_label(d),
            location: match &d.kind {
                DataStoreKind::Ldif { path } => path.clone(),
                DataStoreKind::Ldap(ldap) => ldap.hostnames.join(", "),
            },
            readers: connections
                .iter()
                .flat_map(|c| {
                    c.channels
                        .iter()
                        .filter(|ch| ch.data_store == d.name)
                        .map(move |ch| format!("{} / {}", c.name, ch.name))
                })
                .collect(),
        })
        .collect();
    render(&ListPage {
        csrf: signed_on.csrf,
        rows,
        from_wizard: opened.opened_from_wizard(),
        message: signed_on.flash.message,
        error: signed_on.flash.error,
    })
}

fn kind_label(data_store: &DataStore) -> &'static str {
    match data_store.kind {
        DataStoreKind::Ldif { .. } => "LDIF file",
        DataStoreKind::Ldap(_) => "LDAP directory",
    }
}

/// The form's fields, as typed; a secret box is never filled from the store.
#[derive(Debug, Clone, Default)]
struct Fields {
    name: String,
    /// `ldap` or `ldif`.
    kind: String,
    path: String,
    ldap_type: String,
    hostnames: String,
    use_ldaps: bool,
    use_start_tls: bool,
    ca_certificate: String,
    bind_method: String,
    user_dn: String,
    bind_password: String,
    client_certificate: String,
    client_key: String,
    connection_timeout: String,
    read_timeout: String,
    page_size: String,
}

impl Fields {
    fn new(kind: &str) -> Fields {
        Fields {
            kind: if kind == "ldif" { "ldif" } else { "ldap" }.into(),
            ldap_type: "openldap".into(),
            bind_method: "simple".into(),
            connection_timeout: "10".into(),
            read_timeout: "60".into(),
            ..Fields::default()
        }
    }

    fn of(data_store: &DataStore) -> Fields {
        match &data_store.kind {
            DataStoreKind::Ldif { path } => Fields {
                name: data_store.name.clone(),
                path: path.clone(),
                ..Fields::new("ldif")
            },
            DataStoreKind::Ldap(ldap) => Fields::of_ldap(&data_store.name, ldap),
        }
    }

    fn of_ldap(name: &str, ldap: &LdapSettings) -> Fields {
        // The words of the configuration file, through the model's own serde.
        let word = |value: Value| value.as_str().unwrap_or_default().to_owned();
        let settings = serde_json::to_value(ldap).unwrap_or_default();
        Fields {
            name: name.to_owned(),
            kind: "ldap".into(),
            path: String::new(),
            ldap_type: word(settings["ldap_type"].clone()),
            hostnames: ldap.hostnames.join(", "),
            use_ldaps: ldap.use_ldaps,
            use_start_tls: ldap.use_start_tls,
            ca_certificate: ldap.ca_certificate.clone().unwrap_or_default(),
            bind_method: word(settings["bind_method"].clone()),
            user_dn: ldap.user_dn.clone().unwrap_or_default(),
            bind_password: String::new(),
            client_certificate: ldap.client_certificate.clone().unwrap_or_default(),
            client_key: ldap.client_key.clone().unwrap_or_default(),
            connection_timeout: ldap.connection_timeout.to_string(),
            read_timeout: ldap.read_timeout.to_string(),
            page_size: ldap.page_size.map(|n| n.to_string()).unwrap_or_default(),
        }
    }

    fn take(form: &BTreeMap<String, String>) -> Fields {
        let text = |key: &str| {
            form.get(key)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        Fields {
            name: text("name"),
            kind: text("kind"),
            path: text("path"),
            ldap_type: text("ldap_type"),
            hostnames: text("hostnames"),
            use_ldaps: form.contains_key("use_ldaps"),
            use_start_tls: form.contains_key("use_start_tls"),
            ca_certificate: text("ca_certificate"),
            bind_method: text("bind_method"),
            user_dn: text("user_dn"),
            // A password may begin or end with spaces.
            bind_password: form.get("bind_password").cloned().unwrap_or_default(),
            client_certificate: text("client_certificate"),
            client_key: text("client_key"),
            connection_timeout: text("connection_timeout"),
            read_timeout: text("read_timeout"),
            page_size: text("page_size"),
        }
    }

    /// The data store the fields describe, read as a configuration file's `[[data_store]]`
    /// would be; the problems in the console's words when it cannot be.
    fn data_store(&self) -> Result<DataStore, Vec<String>> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push("Name: give the data store a name.".to_owned());
        }
        let mut document = Map::new();
        document.insert("name".into(), json!(self.name));
        document.insert("type".into(), json!(self.kind));
        if self.kind == "ldif" {
            if self.path.is_empty() {
                problems.push("LDIF File: give the file's path on the server.".to_owned());
            } else if !self.path.to_ascii_lowercase().ends_with(".ldif") {
                // Test shows what it read: the console reads directory files, not any file of
                // the server. Another name is set with `scimbridge apply` on the server.
                problems.push(
                    "LDIF File: the console reads files named *.ldif; set another name with scimbridge apply on the server.".to_owned(),
                );
            }
            document.insert("path".into(), json!(self.path));
        } else {
            let hostnames: Vec<&str> = self
                .hostnames
                .split([',', ' ', '\n', '\r'])
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect();
            if hostnames.is_empty() {
                problems.push("Hostnames: give at least one (host, host:port or URL).".into());
            }
            let mut ldap = Map::new();
            ldap.insert("ldap_type".into(), json!(self.ldap_type));
            ldap.insert("hostnames".into(), json!(hostnames));
            ldap.insert("use_ldaps".into(), json!(self.use_ldaps));
            ldap.insert("use_start_tls".into(), json!(self.use_start_tls));
            ldap.insert("bind_method".into(), json!(self.bind_method));
            for (label, path) in [
                ("Trusted CA Certificates", &self.ca_certificate),
                ("Client Certificate", &self.client_certificate),
                ("Client Key", &self.client_key),
            ] {
                if !path.is_empty() && !super::settings::is_pem_path(path) {
                    problems.push(format!(
                        "{label}: the console names .pem, .crt, .cer or .key files; set another with scimbridge apply on the server."
                    ));
                }
            }
            // The boxes of the other bind methods are only hidden: what they hold is not sent.
            let simple = self.bind_method == "simple";
            let external = self.bind_method == "sasl-external";
            for (key, value, used) in [
                ("ca_certificate", &self.ca_certificate, true),
                ("user_dn", &self.user_dn, simple),
                ("client_certificate", &self.client_certificate, external),
                ("client_key", &self.client_key, external),
            ] {
                if used && !value.is_empty() {
                    ldap.insert(key.into(), json!(value));
                }
            }
            // A reference would make the server read its own environment or files and send
            // them to the directory named here: only configuration files applied on the server
            // may hold one, as for the target's secrets.
            if self.bind_password.starts_with("env:") || self.bind_password.starts_with("file:") {
                problems.push(
                    "Password: env: and file: references are taken only from configuration files applied on the server (scimbridge apply); type the password itself.".into(),
                );
            }
            // Empty: the stored password is kept (`keep_omitted_secrets`) where
            // `may_keep_password` allows.
            if simple && !self.bind_password.is_empty() {
                ldap.insert("bind_password".into(), json!(self.bind_password));
            }
            for (key, label, value) in [
                (
                    "connection_timeout",
                    "Connection Timeout",
                    &self.connection_timeout,
                ),
                ("read_timeout", "Read Timeout", &self.read_timeout),
                ("page_size", "Page Size", &self.page_size),
            ] {
                if value.is_empty() {
                    continue;
                }
                match value.parse::<u64>() {
                    Ok(number) if number > 0 => {
                        ldap.insert(key.into(), json!(number));
                    }
                    _ => problems.push(format!("{label}: a whole number above 0.")),
                }
            }
            document.insert("ldap".into(), Value::Object(ldap));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        serde_json::from_value(Value::Object(document)).map_err(|e| vec![e.to_string()])
    }
}

#[derive(Template)]
#[template(path = "console/data_store.html")]
struct FormPage {
    csrf: String,
    fields: Fields,
    /// The stored data store's name when editing (the name cannot change).
    editing: Option<String>,
    has_password: bool,
    from_wizard: bool,
    problems: Vec<String>,
    ldap_types: &'static [(&'static str, &'static str)],
    bind_methods: &'static [(&'static str, &'static str)],
}

const LDAP_TYPES: &[(&str, &str)] = &[
    ("active-directory", "Active Directory"),
    ("openldap", "OpenLDAP"),
    ("ping-directory", "PingDirectory"),
    ("389-directory-server", "389 Directory Server"),
    ("generic", "Generic LDAP"),
];

const BIND_METHODS: &[(&str, &str)] = &[
    ("simple", "Simple (user DN and password)"),
    ("anonymous", "Anonymous"),
    ("sasl-external", "SASL EXTERNAL (TLS client certificate)"),
];

fn form_page(
    signed_on: &SignedOn,
    fields: Fields,
    editing: Option<String>,
    has_password: bool,
    from_wizard: bool,
    problems: Vec<String>,
) -> Response {
    let refused = !problems.is_empty();
    let mut response = render(&FormPage {
        csrf: signed_on.csrf.clone(),
        fields,
        editing,
        has_password,
        from_wizard,
        problems,
        ldap_types: LDAP_TYPES,
        bind_methods: BIND_METHODS,
    });
    if refused {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

pub(super) async fn new_form(signed_on: SignedOn, Query(opened): Query<Opened>) -> Response {
    let fields = Fields::new(opened.kind.as_deref().unwrap_or("ldap"));
    form_page(
        &signed_on,
        fields,
        None,
        false,
        opened.opened_from_wizard(),
        Vec::new(),
    )
}

pub(super) async fn edit_form(
    State(console): State<Console>,
    signed_on: SignedOn,
    UrlPath(name): UrlPath<String>,
    Query(opened): Query<Opened>,
) -> Response {
    let Some(stored) = stored(&console, &name).await else {
        return (StatusCode::NOT_FOUND, "no such data store").into_response();
    };
    form_page(
        &signed_on,
        Fields::of(&stored),
        Some(name),
        has_password(&stored),
        opened.opened_from_wizard(),
        Vec::new(),
    )
}

async fn stored(console: &Console, name: &str) -> Option<DataStore> {
    let stores = console.dir.store.data_stores().await.ok()?;
    stores.into_iter().find(|d| d.name == name)
}

/// Whether the stored data store's password may stand in for an empty password box: the same
/// data store, edited, bound the same way as the same account to the same servers. Otherwise a
/// form could send the password saved for one directory to a host of its choosing.
fn may_keep_password(editing: Option<&str>, stored: &DataStore, new: &DataStore) -> bool {
    let (Some(before), Some(after)) = (stored.ldap(), new.ldap()) else {
        return false;
    };
    editing == Some(stored.name.as_str())
        && before.hostnames == after.hostnames
        && before.use_ldaps == after.use_ldaps
        && before.use_start_tls == after.use_start_tls
        && before.bind_method == after.bind_method
        && before.user_dn == after.user_dn
}

/// Whether the form asks to keep a stored password (simple bind, box left empty).
fn keeps_password(data_store: &DataStore) -> bool {
    data_store.ldap().is_some_and(|l| {
        l.bind_method == scimbridge_model::BindMethod::Simple && l.bind_password.is_none()
    })
}

fn has_password(data_store: &DataStore) -> bool {
    data_store.ldap().is_some_and(|l| l.bind_password.is_some())
}

pub(super) async fn save(
    State(console): State<Console>,
    Posted { signed_on, form }: Posted,
) -> Response {
    let mut fields = Fields::take(&form);
    let editing = form.get("editing").filter(|n| !n.is_empty()).cloned();
    let from_wizard = form.get("from").map(String::as_str) == Some("wizard");
    if let Some(name) = &editing {
        // The name is the key: an edit keeps it.
        fields.name.clone_from(name);
    }
    let stored = stored(&console, &fields.name).await;
    let has_password = stored.as_ref().is_some_and(has_password);
    let refuse = |problems: Vec<String>, fields: Fields| {
        form_page(
            &signed_on,
            fields,
            editing.clone(),
            has_password,
            from_wizard,
            problems,
        )
    };
    if editing.is_none() && stored.is_some() {
        let problem = format!(
            "A data store named {} exists already: edit it from the list.",
            fields.name
        );
        return refuse(vec![problem], fields);
    }
    let data_store = match fields.data_store() {
        Ok(data_store) => data_store,
        Err(problems) => return refuse(problems, fields),
    };
    if let Some(stored) = &stored
        && keeps_password(&data_store)
        && has_password
        && !may_keep_password(editing.as_deref(), stored, &data_store)
    {
        let problem = "Password: the hostnames, TLS or user DN changed; type the password again \
                       (a saved password is only sent to the servers it was saved for)."
            .to_owned();
        return refuse(vec![problem], fields);
    }
    let name = data_store.name.clone();
    if let Err(error) = save_objects(&console.dir.store, vec![data_store], Vec::new()).await {
        // The password typed is not shown again.
        fields.bind_password.clear();
        let problems = refusal_problems(&error)
            .iter()
            .map(|p| super::settings::in_console_words(p))
            .collect();
        return refuse(problems, fields);
    }
    let message = format!("Data store {name} saved.");
    if from_wizard {
        // Back to the Source step with this data store chosen.
        console.update_draft(&signed_on.id, |draft| draft.data_store.clone_from(&name));
        return console.redirect_with(
            &signed_on.id,
            "/console/wizard/source",
            FlashKind::Message,
            message,
        );
    }
    console.redirect_with(
        &signed_on.id,
        "/console/data-stores",
        FlashKind::Message,
        message,
    )
}

struct SampleRow {
    dn: String,
    attributes: String,
}

#[derive(Template)]
#[template(path = "console/data_store_test.html")]
struct TestResult {
    ok: bool,
    text: String,
    naming_contexts: Vec<String>,
    entries: Vec<SampleRow>,
}

/// Test: binds (or reads the file) and shows a few user entries, with what the form holds
/// now; an empty password box tests with the stored password.
pub(super) async fn test(State(console): State<Console>, Posted { form, .. }: Posted) -> Response {
    let mut fields = Fields::take(&form);
    if let Some(name) = form.get("editing").filter(|n| !n.is_empty()) {
        fields.name.clone_from(name);
    }
    if fields.name.is_empty() {
        fields.name = "new data store".into();
    }
    let failed = |text: String| TestResult {
        ok: false,
        text,
        naming_contexts: Vec::new(),
        entries: Vec::new(),
    };
    let result = match fields.data_store() {
        Err(problems) => failed(problems.join(" ")),
        Ok(mut data_store) => {
            let editing = form.get("editing").map(String::as_str);
            if let Some(stored) = stored(&console, &data_store.name).await
                && may_keep_password(editing, &stored, &data_store)
            {
                data_store.keep_omitted_secrets(&stored);
            }
            match source_of(&data_store).sample(TEST_SAMPLE, None).await {
                Ok(sample) => TestResult {
                    ok: true,
                    text: format!("Test succeeded: {}.", sample.summary),
                    naming_contexts: sample.naming_contexts.clone(),
                    entries: sample
                        .entries
                        .iter()
                        .map(|e| SampleRow {
                            dn: e.dn.clone(),
                            attributes: attribute_list(
                                e.attributes.iter().map(|a| a.name.as_str()),
                            ),
                        })
                        .collect(),
                },
                Err(e) => failed(format!("Test failed: {e}")),
            }
        }
    };
    render(&result)
}

/// An entry's attribute names, each once, in the entry's order.
fn attribute_list<'a>(attributes: impl Iterator<Item = &'a str>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for name in attributes {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

pub(super) async fn delete(
    State(console): State<Console>,
    UrlPath(name): UrlPath<String>,
    posted: Posted,
) -> Response {
    let (kind, text) = match delete_data_store(&console.dir.store, &name).await {
        Ok(()) => (FlashKind::Message, format!("Data store {name} deleted.")),
        Err(refused) => (
            FlashKind::Error,
            format!("{name} was not deleted: {refused}."),
        ),
    };
    console.redirect_with(&posted.signed_on.id, "/console/data-stores", kind, text)
}
