//! Configurations for the tests, built in a few calls and written out as the TOML file an
//! operator would apply.
//!
//! Most tests share one shape, [`Config::ldif`]: the LDIF file as data store `corp`, the
//! connection `app` (active, a bearer token) and its channel `staff` reading the people of
//! `ou=people,dc=example,dc=com`, `userName` from `uid`. A test adds what it is about, one call
//! per setting:
//!
//! ```ignore
//! let config = Config::ldif(&ws.ldif, &target.url, "t0ken")
//!     .target("use_bulk", false)
//!     .option("remove_user_action", "delete")
//!     .location("group_base_dn", GROUPS)
//!     .map("familyName", "sn");
//! ws.apply(&config);
//! ```
//!
//! Setters replace a key already set, so a variant of a configuration is the configuration and
//! one more call. Channel settings go to the last channel added.

use std::fmt::{self, Display, Write as _};
use std::path::Path;

use super::directory::PEOPLE;

/// A value as a TOML file spells it.
pub trait Value {
    fn toml(&self) -> String;
}

impl Value for str {
    fn toml(&self) -> String {
        let mut quoted = String::from("\"");
        for c in self.chars() {
            match c {
                '"' => quoted.push_str("\\\""),
                '\\' => quoted.push_str("\\\\"),
                '\n' => quoted.push_str("\\n"),
                c if c.is_control() => {
                    let _ = write!(quoted, "\\u{:04X}", u32::from(c));
                }
                c => quoted.push(c),
            }
        }
        quoted.push('"');
        quoted
    }
}

impl Value for String {
    fn toml(&self) -> String {
        self.as_str().toml()
    }
}

impl<T: Value + ?Sized> Value for &T {
    fn toml(&self) -> String {
        (**self).toml()
    }
}

macro_rules! plain_values {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn toml(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
plain_values!(bool, u16, u32, u64, usize, i32, i64);

impl<T: Value> Value for [T] {
    fn toml(&self) -> String {
        let items: Vec<String> = self.iter().map(Value::toml).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Value, const N: usize> Value for [T; N] {
    fn toml(&self) -> String {
        self[..].toml()
    }
}

/// Keys and values in the order they were first set.
#[derive(Clone, Default, Debug)]
struct Table(Vec<(String, String)>);

impl Table {
    fn set(&mut self, key: &str, value: String) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    fn write(&self, out: &mut String, header: &str) {
        if self.0.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{header}");
        for (key, value) in &self.0 {
            let _ = writeln!(out, "{} = {value}", toml_key(key));
        }
    }
}

fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_owned() } else { key.toml() }
}

/// How one SCIM field is filled: an inline table of the attribute mapping.
#[derive(Clone, Debug)]
pub struct Field(Table);

impl Field {
    /// The first of these source attributes that has a value.
    pub fn attributes(names: &[&str]) -> Field {
        Field(Table::default()).with("attributes", names)
    }

    pub fn attribute(name: &str) -> Field {
        Field::attributes(&[name])
    }

    pub fn expression(text: &str) -> Field {
        Field(Table::default()).with("expression", text)
    }

    /// Another key of the mapping: `default_value`, `create_only`, `masked`, `multi_valued`,
    /// `parser`.
    pub fn with(mut self, key: &str, value: impl Value) -> Field {
        self.0.set(key, value.toml());
        self
    }
}

impl Value for Field {
    fn toml(&self) -> String {
        let entries: Vec<String> = (self.0)
            .0
            .iter()
            .map(|(key, value)| format!("{} = {value}", toml_key(key)))
            .collect();
        format!("{{ {} }}", entries.join(", "))
    }
}

#[derive(Clone, Debug)]
pub struct DataStore {
    name: String,
    settings: Table,
    ldap: Table,
}

impl DataStore {
    fn named(name: &str, kind: &str) -> DataStore {
        let mut settings = Table::default();
        settings.set("name", name.toml());
        settings.set("type", kind.toml());
        DataStore {
            name: name.to_owned(),
            settings,
            ldap: Table::default(),
        }
    }

    /// An LDIF file.
    pub fn ldif(name: &str, path: &Path) -> DataStore {
        let mut store = DataStore::named(name, "ldif");
        store
            .settings
            .set("path", path.display().to_string().toml());
        store
    }

    /// An LDAP server of `ldap_type` (`openldap`, `active-directory`…), bound as `user_dn`.
    pub fn ldap(name: &str, ldap_type: &str, host: &str, user_dn: &str, password: &str) -> Self {
        DataStore::named(name, "ldap")
            .ldap_setting("ldap_type", ldap_type)
            .ldap_setting("hostnames", [host])
            .ldap_setting("user_dn", user_dn)
            .ldap_setting("bind_password", password)
    }

    /// A key of `[data_store.ldap]`: `read_timeout`…
    pub fn ldap_setting(mut self, key: &str, value: impl Value) -> DataStore {
        self.ldap.set(key, value.toml());
        self
    }
}

#[derive(Clone, Debug)]
struct Channel {
    settings: Table,
    source_settings: Table,
    source_location: Table,
    attribute_mapping: Table,
    extension_mapping: Table,
}

#[derive(Clone, Debug)]
struct Connection {
    settings: Table,
    target: Table,
    options: Table,
    guard: Table,
    channels: Vec<Channel>,
}

/// A table of the file that holds settings, in the last data store, connection or channel.
#[derive(Clone, Copy)]
enum Section {
    Ldap,
    Connection,
    Target,
    Options,
    Guard,
    Channel,
    Source,
    Location,
    AttributeMapping,
    ExtensionMapping,
}

/// Setters of one key in one section, each named after the section.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident => $section:ident,)*) => {
        impl Config {
            $(
                $(#[$doc])*
                pub fn $name(mut self, key: &str, value: impl Value) -> Config {
                    self.table(Section::$section).set(key, value.toml());
                    self
                }
            )*
        }
    };
}

setters! {
    /// A key of the last data store's `[data_store.ldap]`: `bind_password`, `read_timeout`…
    ldap => Ldap,
    /// A key of the last `[[connection]]` itself: `name`, `active`.
    connection_setting => Connection,
    /// A key of `[connection.target]`: `use_bulk`, `max_retries`, `group_member_chunk_size`,
    /// `unique_user_identifier`…
    target => Target,
    /// A key of `[connection.options]`: `remove_user_action`, `user_create`…
    option => Options,
    /// A key of `[connection.guard]`: `max_deprovisions`, `max_blanked`…
    guard => Guard,
    /// A key of the last channel's `[[connection.channel]]`: `timeout`, `max_threads`,
    /// `live_poll_interval`, `data_store`…
    channel_setting => Channel,
    /// A key of the last channel's `[connection.channel.source_settings]`.
    source => Source,
    /// A key of the last channel's `[connection.channel.source_location]`: `base_dn`,
    /// `group_base_dn`, `user_filter`, `user_group_dn`…
    location => Location,
}

/// A configuration file: data stores, then connections with their channels.
#[derive(Clone, Debug, Default)]
pub struct Config {
    data_stores: Vec<DataStore>,
    connections: Vec<Connection>,
}

impl Config {
    /// `version = 1` and nothing else yet.
    pub fn new() -> Config {
        Config::default()
    }

    /// The shape most tests share, reading `store`: the connection `app`, active, sending to
    /// `url` with the bearer token `token`, and its channel `staff` reading the people of
    /// `ou=people,dc=example,dc=com`, `userName` from `uid`.
    pub fn reading(store: DataStore, url: &str, token: &str) -> Config {
        let name = store.name.clone();
        Config::new()
            .data_store(store)
            .connection("app", url)
            .bearer(token)
            .channel("staff", &name)
            .location("base_dn", PEOPLE)
            .map("userName", "uid")
    }

    /// [`Config::reading`] the LDIF file `ldif` as the data store `corp`.
    pub fn ldif(ldif: &Path, url: &str, token: &str) -> Config {
        Config::reading(DataStore::ldif("corp", ldif), url, token)
    }

    pub fn data_store(mut self, store: DataStore) -> Config {
        self.data_stores.push(store);
        self
    }

    /// A new connection, active, to the SCIM service at `url`.
    pub fn connection(mut self, name: &str, url: &str) -> Config {
        let mut settings = Table::default();
        settings.set("name", name.toml());
        settings.set("active", "true".into());
        let mut target = Table::default();
        target.set("scim_url", url.toml());
        self.connections.push(Connection {
            settings,
            target,
            options: Table::default(),
            guard: Table::default(),
            channels: Vec::new(),
        });
        self
    }

    /// The connection left inactive: stored without a check, and not run.
    pub fn inactive(self) -> Config {
        self.connection_setting("active", false)
    }

    /// OAuth 2 bearer authentication with this token (or `env:`/`file:` reference).
    pub fn bearer(self, token: &str) -> Config {
        self.target("authentication", "oauth2-bearer")
            .target("access_token", token)
    }

    /// A new channel of the last connection, reading the data store `data_store`.
    pub fn channel(mut self, name: &str, data_store: &str) -> Config {
        let mut settings = Table::default();
        settings.set("name", name.toml());
        settings.set("data_store", data_store.toml());
        self.last_connection().channels.push(Channel {
            settings,
            source_settings: Table::default(),
            source_location: Table::default(),
            attribute_mapping: Table::default(),
            extension_mapping: Table::default(),
        });
        self
    }

    /// The last channel's source location without this key.
    pub fn without_location(mut self, key: &str) -> Config {
        self.table(Section::Location).remove(key);
        self
    }

    /// `field` of the last channel filled from the source attribute `attribute`.
    pub fn map(self, field: &str, attribute: &str) -> Config {
        self.map_field(field, Field::attribute(attribute))
    }

    pub fn map_field(mut self, field: &str, mapping: Field) -> Config {
        self.table(Section::AttributeMapping)
            .set(field, mapping.toml());
        self
    }

    /// The last channel's attribute mapping without `field`.
    pub fn unmap(mut self, field: &str) -> Config {
        self.table(Section::AttributeMapping).remove(field);
        self
    }

    /// An entry of the last channel's `[connection.channel.extension_mapping]`.
    pub fn extension(mut self, path: &str, mapping: Field) -> Config {
        self.table(Section::ExtensionMapping)
            .set(path, mapping.toml());
        self
    }

    /// The TOML file.
    pub fn toml(&self) -> String {
        self.to_string()
    }

    fn table(&mut self, section: Section) -> &mut Table {
        match section {
            Section::Ldap => {
                &mut (self.data_stores.last_mut())
                    .expect("add a data store first")
                    .ldap
            }
            Section::Connection => &mut self.last_connection().settings,
            Section::Target => &mut self.last_connection().target,
            Section::Options => &mut self.last_connection().options,
            Section::Guard => &mut self.last_connection().guard,
            Section::Channel => &mut self.last_channel().settings,
            Section::Source => &mut self.last_channel().source_settings,
            Section::Location => &mut self.last_channel().source_location,
            Section::AttributeMapping => &mut self.last_channel().attribute_mapping,
            Section::ExtensionMapping => &mut self.last_channel().extension_mapping,
        }
    }

    fn last_connection(&mut self) -> &mut Connection {
        self.connections.last_mut().expect("add a connection first")
    }

    fn last_channel(&mut self) -> &mut Channel {
        self.last_connection()
            .channels
            .last_mut()
            .expect("add a channel first")
    }
}

impl Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("version = 1\n");
        for store in &self.data_stores {
            store.settings.write(&mut out, "[[data_store]]");
            store.ldap.write(&mut out, "[data_store.ldap]");
        }
        for connection in &self.connections {
            connection.settings.write(&mut out, "[[connection]]");
            connection.target.write(&mut out, "[connection.target]");
            connection.options.write(&mut out, "[connection.options]");
            connection.guard.write(&mut out, "[connection.guard]");
            for channel in &connection.channels {
                channel.settings.write(&mut out, "[[connection.channel]]");
                let tables = [
                    (&channel.source_settings, "source_settings"),
                    (&channel.source_location, "source_location"),
                    (&channel.attribute_mapping, "attribute_mapping"),
                    (&channel.extension_mapping, "extension_mapping"),
                ];
                for (table, name) in tables {
                    table.write(&mut out, &format!("[connection.channel.{name}]"));
                }
            }
        }
        f.write_str(&out)
    }
}
