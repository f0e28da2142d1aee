//! The LDAP data store: a full read, or an incremental one with the best change detection the
//! server offers (RFC 4533 content synchronization, the Active Directory USN, timestamps).
//!
//! An incremental read returns the changed users and the GUIDs of users that are gone (deleted,
//! moved out of the base DN or the filter, or out of the scope group). Groups are read from
//! their own entries, never from `memberOf` (the memberof overlay changes it without touching
//! any timestamp): an incremental read takes the version of every group, without members, and
//! reads whole only those that need it. A scope by group reads every group whole.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use scimbridge_ldap::{Bind, ClientSettings, LdapClient, LdapError, RawEntry, RootDse};
use scimbridge_model::{
    AccountStatus, BindMethod, ChangeDetection, Channel, DataStore, EffectiveSourceSettings,
    EntryGuid, EpochMs, LdapSettings, SourceEntry, SourceLocation, SourceSettings, SyncState,
};

use super::live::LiveFeed;
use super::scope::GroupIndex;
use super::{
    DataStoreSample, EntryFailure, FullReadPages, Known, KnownUser, OneUserRead, ReadRequest,
    STAMP_ATTRIBUTES, Source, SourceError, SourceRead, SourceScan, UserLookup, apply_group_scope,
    entry_guid, group_stamp, is_within, keep_pages, keyed_entry, needs_every_record, normalize_dn,
    to_entry, to_group,
};
use crate::clock::{civil_from_days, days_from_civil};
use crate::map::mapped_attributes;
use crate::secret::resolve;

/// What a channel asks of an LDAP read.
#[derive(Clone, Copy)]
pub struct LdapReadRequest<'a> {
    pub settings: &'a EffectiveSourceSettings,
    pub location: &'a SourceLocation,
    /// The attributes the mapping reads.
    pub mapped: &'a [String],
    pub known: &'a Known<'a>,
    /// A sweep for deletes is due: an incremental read compares every GUID in scope with the
    /// known users, where its change detection cannot see a delete (see [`sweep_due`]).
    pub sweep_due: bool,
    /// Where a full read hands its users a page at a time (see [`FullReadPages`]).
    pub pages: Option<&'a dyn FullReadPages>,
}

/// A read of the data store and how it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapRead {
    pub scan: SourceScan,
    /// The change detection used ("content-sync", "timestamp", …).
    pub mechanism: ChangeDetection,
    /// The cursor for the next incremental read.
    pub cursor: String,
    /// Every GUID in scope was compared with the known users (a full read, or a sweep).
    pub swept: bool,
}

/// An LDAP directory as a data store.
pub struct LdapSource<'a> {
    data_store: &'a DataStore,
}

impl<'a> LdapSource<'a> {
    pub fn new(data_store: &'a DataStore) -> LdapSource<'a> {
        LdapSource { data_store }
    }
}

#[async_trait]
impl Source for LdapSource<'_> {
    async fn read(
        &self,
        request: &ReadRequest<'_>,
    ) -> Result<(SourceScan, SourceRead), SourceError> {
        let data_store = self.data_store;
        let settings = request.settings;
        let now_ms = request.now_ms;
        // A cursor belongs to the directory it was taken from: other hosts, a full read.
        let hosts = data_store
            .ldap()
            .map(|l| l.urls().join(" "))
            .unwrap_or_default();
        let fingerprint = &format!("{} {hosts}", request.fingerprint);
        let previous = request.previous.filter(|state| {
            incremental_allowed(
                state,
                fingerprint,
                settings.full_reconciliation_hours,
                now_ms,
            )
        });
        let channel = request.channel;
        let mapped = mapped_attributes(&channel.attribute_mapping, &channel.extension_mapping);
        let ldap_request = LdapReadRequest {
            settings,
            location: &channel.source_location,
            mapped: &mapped,
            known: request.known,
            sweep_due: previous
                .is_some_and(|state| sweep_due(state, settings.delete_sweep_minutes, now_ms)),
            pages: request.pages,
        };
        let mut client = connect(data_store).await?;
        let result = read(&mut client, &data_store.name, &ldap_request, previous).await;
        client.close().await;
        let read = result?;
        let full = read.scan.complete;
        let next_state = SyncState {
            mechanism: read.mechanism,
            cursor: read.cursor,
            settings_fingerprint: fingerprint.to_owned(),
            last_full_read_ms: match previous {
                Some(state) if !full => state.last_full_read_ms,
                _ => now_ms,
            },
            last_sweep_ms: match previous {
                Some(state) if !read.swept => state.last_sweep_ms,
                _ => now_ms,
            },
        };
        let source_read = SourceRead {
            mechanism: read.mechanism,
            full,
            swept_for_deletes: read.swept && !full,
            next_state: (!next_state.cursor.is_empty()).then_some(next_state),
            groups_read_whole: read
                .scan
                .groups_incremental
                .then_some((read.scan.groups.len(), read.scan.groups_in_scope)),
        };
        Ok((read.scan, source_read))
    }

    async fn read_one_user(
        &self,
        channel: &Channel,
        settings: &EffectiveSourceSettings,
        lookup: &UserLookup<'_>,
    ) -> Result<OneUserRead, SourceError> {
        let location = &channel.source_location;
        let base = normalize_dn(&location.base_dn);
        let mut record = match is_within(&normalize_dn(lookup.dn), &base) {
            true => self.read_entry(channel, settings, lookup.dn).await?,
            false => None,
        };
        if record.is_none()
            && let Some(guid) = lookup.guid
            && let Some(dn) = find_user_dn(self.data_store, settings, location, guid).await?
        {
            record = self.read_entry(channel, settings, &dn).await?;
        }
        Ok(OneUserRead {
            entry: record.map(|r| keyed_entry(&r, settings)),
            suspect: None,
        })
    }

    async fn read_entry(
        &self,
        channel: &Channel,
        settings: &EffectiveSourceSettings,
        dn: &str,
    ) -> Result<Option<RawEntry>, SourceError> {
        let mapped = mapped_attributes(&channel.attribute_mapping, &channel.extension_mapping);
        read_user(
            self.data_store,
            settings,
            &channel.source_location,
            &mapped,
            dn,
        )
        .await
    }

    async fn check(
        &self,
        settings: &EffectiveSourceSettings,
        location: &SourceLocation,
    ) -> Result<String, SourceError> {
        let found = check(self.data_store, settings, location).await?;
        Ok(format!(
            "answers at {}{}: bind accepted, {} found, {} of the first users read with their {}; \
             changes found with {}",
            found.server,
            found.vendor.map(|v| format!(" ({v})")).unwrap_or_default(),
            location.base_dn,
            found.sampled_users,
            settings.entry_guid_attribute,
            found.mechanism.name()
        ))
    }

    async fn live_feed(
        &self,
        location: &SourceLocation,
        poll_interval: Duration,
    ) -> Result<Option<LiveFeed>, SourceError> {
        open_live_feed(self.data_store, location, poll_interval).await
    }

    async fn sample(
        &self,
        limit: u32,
        user_object_class: Option<&str>,
    ) -> Result<DataStoreSample, SourceError> {
        let user_class = user_object_class.map_or_else(
            || {
                SourceSettings::default()
                    .effective(self.data_store.ldap_type())
                    .user_object_class
            },
            str::to_owned,
        );
        let mut client = connect(self.data_store).await?;
        let result = sample_with(&mut client, &user_class, limit).await;
        let server = client.url().to_owned();
        client.close().await;
        let (dse, base, entries) = result.map_err(|reason| SourceError::Unreadable {
            data_store: self.data_store.name.clone(),
            reason,
        })?;
        let vendor = dse
            .vendor_name
            .as_deref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        let found = match base {
            Some(base) => format!("{} user entries read below {base}", entries.len()),
            None => {
                format!("no user entry found that the account can read (object class {user_class})")
            }
        };
        Ok(DataStoreSample {
            summary: format!("answers at {server}{vendor}: bind accepted, {found}"),
            naming_contexts: dse.naming_contexts,
            entries,
        })
    }
}

/// The root DSE, the naming context the users were found in, and up to `limit` of them (every
/// attribute). Contexts are tried in the server's order: the first may hold none (OpenLDAP's
/// `cn=accesslog`, Active Directory's configuration partition).
async fn sample_with(
    client: &mut LdapClient,
    user_class: &str,
    limit: u32,
) -> Result<(RootDse, Option<String>, Vec<RawEntry>), String> {
    let dse = client.root_dse().await.map_err(|e| e.to_string())?;
    let filter = format!("(objectClass={user_class})");
    let mut refused = None;
    for base in &dse.naming_contexts {
        // "+": operational attributes too (entryUUID, memberOf), which mappings use.
        match client.sample(base, &filter, &["*", "+"], limit).await {
            Ok(entries) if !entries.is_empty() => {
                let base = base.clone();
                return Ok((dse, Some(base), entries));
            }
            Ok(_) => {}
            // A context the account may not read: the next may be the one.
            Err(e) => refused = Some(e.to_string()),
        }
    }
    match refused {
        Some(reason) if dse.naming_contexts.len() == 1 => Err(reason),
        _ => Ok((dse, None, Vec::new())),
    }
}

/// Whether the next read may continue from the stored state: the channel settings are the
/// ones it was taken under, and no full reconciliation is due (`hours` 0: never due).
pub fn incremental_allowed(
    state: &SyncState,
    fingerprint: &str,
    hours: u32,
    now_ms: EpochMs,
) -> bool {
    let reconciliation_ms = i64::from(hours) * 3_600_000;
    state.settings_fingerprint == fingerprint
        && (reconciliation_ms == 0 || now_ms.ms_since(state.last_full_read_ms) < reconciliation_ms)
}

/// Whether an incremental read sweeps for deletes: `minutes` after the last sweep or full read
/// (0: every read).
pub fn sweep_due(state: &SyncState, minutes: u32, now_ms: EpochMs) -> bool {
    let interval_ms = i64::from(minutes) * 60_000;
    let last = state.last_sweep_ms.max(state.last_full_read_ms);
    interval_ms == 0 || now_ms.ms_since(last) >= interval_ms
}

/// Scope exits that no change shows need a sweep at every incremental read: a user filter on
/// the member-of attribute (a group membership change leaves the user's version alone), and
/// entries keyed by DN (a rename is a new key, and the old one must go in the same cycle).
fn sweeps_at_every_read(settings: &EffectiveSourceSettings, location: &SourceLocation) -> bool {
    let member_of = settings.member_of_group_attribute.to_ascii_lowercase();
    settings.use_dn_when_guid_missing
        || location
            .user_filter
            .as_deref()
            .is_some_and(|f| f.to_ascii_lowercase().contains(&member_of))
}

/// Connects and binds with the data store's settings.
pub async fn connect(data_store: &DataStore) -> Result<LdapClient, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        data_store: data_store.name.clone(),
        reason,
    };
    let settings = data_store
        .ldap()
        .ok_or_else(|| unreadable("type ldap needs a [data_store.ldap] table".into()))?;
    let client_settings = client_settings(settings).map_err(unreadable)?;
    LdapClient::connect(&client_settings)
        .await
        .map_err(|e| unreadable(e.to_string()))
}

fn client_settings(settings: &LdapSettings) -> Result<ClientSettings, String> {
    let read = |key: &str, path: &Option<String>| -> Result<Option<Vec<u8>>, String> {
        path.as_ref()
            .map(|p| std::fs::read(p).map_err(|e| format!("cannot read ldap.{key} {p}: {e}")))
            .transpose()
    };
    let bind = match settings.bind_method {
        BindMethod::Anonymous => Bind::Anonymous,
        BindMethod::SaslExternal => Bind::SaslExternal,
        BindMethod::Simple => Bind::Simple {
            dn: settings.user_dn.clone().unwrap_or_default(),
            password: match &settings.bind_password {
                Some(secret) => resolve(secret).map_err(|e| format!("ldap.bind_password: {e}"))?,
                None => return Err("ldap.bind_password is not set".into()),
            },
        },
    };
    Ok(ClientSettings {
        urls: settings.urls(),
        start_tls: settings.use_start_tls,
        ca_certificate_pem: read("ca_certificate", &settings.ca_certificate)?,
        client_certificate_pem: read("client_certificate", &settings.client_certificate)?,
        client_key_pem: read("client_key", &settings.client_key)?,
        bind,
        connect_timeout: Duration::from_secs(settings.connection_timeout),
        operation_timeout: Duration::from_secs(settings.read_timeout),
        page_size: settings.page_size(),
    })
}

/// Reads one entry by DN with the attributes a cycle reads; `None` when it does not exist or is
/// not a user of the channel (another object class, or outside the user filter).
pub async fn read_user(
    data_store: &DataStore,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
    mapped: &[String],
    dn: &str,
) -> Result<Option<RawEntry>, SourceError> {
    let mut client = connect(data_store).await?;
    let attributes = user_attributes(settings, mapped);
    let attrs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    let result = client
        .read_matching(dn, &user_filter(settings, location), &attrs)
        .await;
    client.close().await;
    result.map_err(|e| SourceError::Unreadable {
        data_store: data_store.name.clone(),
        reason: e.to_string(),
    })
}

/// The DN of the user in the source location whose GUID is `guid`: one search reading only the
/// GUID attribute (GUIDs are not all searchable by value: Active Directory's are binary).
pub async fn find_user_dn(
    data_store: &DataStore,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
    guid: &str,
) -> Result<Option<String>, SourceError> {
    let mut client = connect(data_store).await?;
    let mut found = None;
    let result = client
        .search_subtree(
            &location.base_dn,
            &user_filter(settings, location),
            &[settings.entry_guid_attribute.as_str()],
            |record| {
                if entry_guid(&to_entry(&record), settings).is_ok_and(|g| g == guid) {
                    found = Some(record.dn);
                }
            },
        )
        .await;
    client.close().await;
    result.map_err(|e| SourceError::Unreadable {
        data_store: data_store.name.clone(),
        reason: e.to_string(),
    })?;
    Ok(found)
}

/// The naming context (the server's suffix) holding `base_dn`; the base DN itself when the
/// root DSE lists none that holds it.
fn naming_context_of(dse: &RootDse, base_dn: &str) -> String {
    let base = normalize_dn(base_dn);
    dse.naming_contexts
        .iter()
        .filter(|c| is_within(&base, &normalize_dn(c)))
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_else(|| base_dn.to_owned())
}

/// The live feed of the directory holding the channel's base DN: its content synchronization
/// when it offers one, else (Active Directory) a `highestCommittedUSN` poll every
/// `poll_interval` unless that is zero; `None`: the channel is polled by its cycles alone.
pub async fn open_live_feed(
    data_store: &DataStore,
    location: &SourceLocation,
    poll_interval: Duration,
) -> Result<Option<LiveFeed>, SourceError> {
    let unreadable = |e: LdapError| SourceError::Unreadable {
        data_store: data_store.name.clone(),
        reason: e.to_string(),
    };
    let mut client = connect(data_store).await?;
    let dse = client.root_dse().await.map_err(unreadable)?;
    if dse.supports_sync() {
        // The whole naming context: group changes matter as much as user changes.
        let naming_context = naming_context_of(&dse, &location.base_dn);
        return client
            .watch(&naming_context)
            .await
            .map(|feed| {
                Some(LiveFeed::Persist {
                    feed,
                    data_store: data_store.name.clone(),
                })
            })
            .map_err(unreadable);
    }
    match dse.highest_committed_usn {
        Some(usn) if !poll_interval.is_zero() => Ok(Some(LiveFeed::UsnPoll {
            client,
            data_store: data_store.name.clone(),
            last: usn,
            interval: poll_interval,
        })),
        _ => {
            client.close().await;
            Ok(None)
        }
    }
}

/// What a check of a channel's LDAP data store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    /// The URL of the server that answered.
    pub server: String,
    pub vendor: Option<String>,
    pub mechanism: ChangeDetection,
    /// Users found in a sample of the base DN (at most [`CHECK_SAMPLE`]).
    pub sampled_users: usize,
}

/// How many users a check reads.
pub const CHECK_SAMPLE: u32 = 10;

/// Proves the channel can read its data store: the bind works, the base DN exists, and the bind
/// account can read the entry GUID attribute of the users. Reads at most a few entries.
pub async fn check(
    data_store: &DataStore,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
) -> Result<SourceCheck, SourceError> {
    let mut client = connect(data_store).await?;
    let result = check_with(&mut client, settings, location).await;
    client.close().await;
    result.map_err(|reason| SourceError::Unreadable {
        data_store: data_store.name.clone(),
        reason,
    })
}

async fn check_with(
    client: &mut LdapClient,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
) -> Result<SourceCheck, String> {
    let dse = client.root_dse().await.map_err(|e| e.to_string())?;
    let mechanism = choose_mechanism(settings.changed_users_algorithm, &dse)?;
    let bases = std::iter::once(("base_dn", location.base_dn.as_str())).chain(
        location
            .group_base_dn
            .as_deref()
            .map(|dn| ("group_base_dn", dn)),
    );
    for (key, dn) in bases {
        if client
            .read(dn, &["1.1"])
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            return Err(format!(
                "source_location.{key} {dn} does not exist or the bind account cannot see it"
            ));
        }
    }
    let scope_groups = [
        ("user_group_dn", &location.user_group_dn),
        ("group_group_dn", &location.group_group_dn),
    ];
    for (key, dn) in scope_groups {
        let Some(dn) = dn else { continue };
        let filter = format!("(objectClass={})", settings.group_object_class);
        let found = client
            .read_matching(dn, &filter, &["1.1"])
            .await
            .map_err(|e| e.to_string())?;
        if found.is_none() {
            return Err(format!(
                "source_location.{key} {dn} is not a group (object class {}) the bind account can see",
                settings.group_object_class
            ));
        }
    }
    let guid = settings.entry_guid_attribute.as_str();
    let sample = client
        .sample(
            &location.base_dn,
            &user_filter(settings, location),
            &[guid],
            CHECK_SAMPLE,
        )
        .await
        .map_err(|e| e.to_string())?;
    if !sample.is_empty() && sample.iter().all(|r| r.values(guid).next().is_none()) {
        return Err(format!(
            "the users below {} have no {guid} the bind account can read; check \
             source_settings.entry_guid_attribute and the account's read rights",
            location.base_dn
        ));
    }
    Ok(SourceCheck {
        server: client.url().to_owned(),
        vendor: dse.vendor_name,
        mechanism,
        sampled_users: sample.len(),
    })
}

/// The change detection a channel uses with this server.
pub fn choose_mechanism(wanted: ChangeDetection, dse: &RootDse) -> Result<ChangeDetection, String> {
    match wanted {
        ChangeDetection::Auto if dse.supports_sync() => Ok(ChangeDetection::ContentSync),
        ChangeDetection::Auto if dse.supports_dirsync() => Ok(ChangeDetection::DirSync),
        ChangeDetection::Auto if dse.highest_committed_usn.is_some() => {
            Ok(ChangeDetection::ActiveDirectoryUsn)
        }
        ChangeDetection::Auto => Ok(ChangeDetection::Timestamp),
        ChangeDetection::ContentSync if !dse.supports_sync() => Err(
            "changed_users_algorithm = \"content-sync\", but the server does not offer RFC 4533 \
             content synchronization (OpenLDAP needs the syncprov overlay)"
                .into(),
        ),
        ChangeDetection::DirSync if !dse.supports_dirsync() => Err(
            "changed_users_algorithm = \"dirsync\", but the server does not offer DirSync (it is \
             not Active Directory)"
                .into(),
        ),
        ChangeDetection::ActiveDirectoryUsn if dse.highest_committed_usn.is_none() => Err(
            "changed_users_algorithm = \"active-directory-usn\", but the server publishes no \
             highestCommittedUSN (it is not Active Directory)"
                .into(),
        ),
        other => Ok(other),
    }
}

/// The attributes to read from user entries: all user attributes plus the operational ones
/// the channel needs.
/// `mapped` are the attributes the channel's mapping reads: operational ones are returned only
/// when asked for by name.
fn user_attributes(settings: &EffectiveSourceSettings, mapped: &[String]) -> Vec<String> {
    let mut attributes: BTreeSet<String> = mapped.iter().cloned().collect();
    attributes.insert(settings.entry_guid_attribute.clone());
    attributes.insert(settings.timestamp_attribute.clone());
    attributes.insert(settings.member_of_group_attribute.clone());
    if settings.changed_users_algorithm == ChangeDetection::ActiveDirectoryUsn {
        attributes.insert(settings.usn_attribute.clone());
    }
    match &settings.account_status {
        AccountStatus::ActiveDirectory { attribute } | AccountStatus::Flag { attribute, .. } => {
            attributes.insert(attribute.clone());
        }
        AccountStatus::None => {}
    }
    let mut list = vec!["*".to_owned()];
    list.extend(attributes);
    list
}

fn user_filter(settings: &EffectiveSourceSettings, location: &SourceLocation) -> String {
    let class = format!("(objectClass={})", settings.user_object_class);
    match &location.user_filter {
        Some(filter) => format!("(&{class}{})", filter.trim()),
        None => class,
    }
}

/// What one read of the directory works with.
struct ReadContext<'a> {
    data_store: &'a str,
    settings: &'a EffectiveSourceSettings,
    known: &'a Known<'a>,
    /// The user filter, the attributes read, and the base.
    filter: String,
    attrs: Vec<&'a str>,
    base: &'a str,
    /// The server's suffix holding the base (DirSync reads from it).
    naming_context: String,
    /// A sweep for the deletes the change detection cannot see is due.
    sweep_due: bool,
    /// Scope exits that no change of the user shows: every read sweeps (see
    /// [`sweeps_at_every_read`]).
    sweep_at_every_read: bool,
    /// Active Directory: deleted entries leave tombstones, found with the show-deleted control.
    tombstones: bool,
    /// Where a full read hands its users a page at a time.
    pages: Option<&'a dyn FullReadPages>,
}

/// The users a read found changed (every user, after a full one), the GUIDs gone, and the
/// cursor for the next read.
struct Changed {
    users: Keyed,
    removed_guids: Vec<EntryGuid>,
    complete: bool,
    next_cursor: String,
    /// Every GUID in scope was compared with the known users.
    swept: bool,
}

impl ReadContext<'_> {
    /// This read sweeps for deletes: due, or at every read.
    fn sweeps(&self) -> bool {
        self.sweep_due || self.sweep_at_every_read
    }
}

fn unreadable_by(data_store: &str) -> impl Fn(LdapError) -> SourceError + '_ {
    move |e| SourceError::Unreadable {
        data_store: data_store.to_owned(),
        reason: match e {
            LdapError::NoSuchObject { dn } => format!(
                "{dn} does not exist; check source_location (nobody is deprovisioned while it is missing)"
            ),
            other => other.to_string(),
        },
    }
}

/// Reads the channel's users and groups. `previous` is the cursor of the last read when an
/// incremental read is allowed (same settings, no full reconciliation due).
pub async fn read(
    client: &mut LdapClient,
    data_store: &str,
    request: &LdapReadRequest<'_>,
    previous: Option<&SyncState>,
) -> Result<LdapRead, SourceError> {
    let unreadable = unreadable_by(data_store);
    let LdapReadRequest {
        settings,
        location,
        mapped,
        known,
        sweep_due,
        pages,
    } = *request;
    let dse = client.root_dse().await.map_err(&unreadable)?;
    let attributes = user_attributes(settings, mapped);
    let mechanism = choose_mechanism(settings.changed_users_algorithm, &dse).map_err(|reason| {
        SourceError::Unreadable {
            data_store: data_store.to_owned(),
            reason,
        }
    })?;
    let cursor = previous
        .filter(|p| p.mechanism == mechanism && !p.cursor.is_empty())
        .map(|p| p.cursor.clone())
        // Another domain controller answered: its USNs are not comparable, read everything.
        .filter(|c| {
            mechanism != ChangeDetection::ActiveDirectoryUsn
                || c.rsplit_once('@')
                    .is_some_and(|(_, url)| url == client.url())
        });
    let cx = ReadContext {
        data_store,
        settings,
        known,
        filter: user_filter(settings, location),
        attrs: attributes.iter().map(String::as_str).collect(),
        base: location.base_dn.as_str(),
        naming_context: naming_context_of(&dse, &location.base_dn),
        sweep_due,
        sweep_at_every_read: sweeps_at_every_read(settings, location),
        tombstones: dse.highest_committed_usn.is_some()
            && settings
                .entry_guid_attribute
                .eq_ignore_ascii_case("objectGUID"),
        pages,
    };
    // Groups, and the group index for scope by group DN.
    let needs_index = location.user_group_dn.is_some() || location.group_group_dn.is_some();
    // A read known to be full before it starts hands its groups over before its users, so that
    // the users it creates as it goes can join them (`FullReadPages::groups`).
    let full_up_front = mechanism == ChangeDetection::FullScan || cursor.is_none();
    let mut groups_first = None;
    if let Some(pages) = pages.filter(|_| full_up_front && !needs_index)
        && location.group_base_dn.is_some()
    {
        let mut first = SourceScan::complete();
        let naming_context = &cx.naming_context;
        let mut index = GroupIndex::default();
        read_groups(
            client,
            naming_context,
            settings,
            location,
            false,
            &mut first,
            &mut index,
        )
        .await
        .map_err(&unreadable)?;
        pages.groups(&first.groups).await?;
        groups_first = Some(first);
    }
    let changed = match (mechanism, cursor) {
        (ChangeDetection::ContentSync, cookie) => read_content_sync(client, &cx, cookie).await?,
        (ChangeDetection::DirSync, Some(cookie)) => read_dirsync(client, &cx, &cookie).await?,
        (ChangeDetection::FullScan, _) | (_, None) => {
            read_everything(client, &cx, mechanism, &dse).await?
        }
        (_, Some(cursor)) => read_changed_since(client, &cx, mechanism, cursor, &dse).await?,
    };
    let mut scan = SourceScan::complete();
    scan.complete = changed.complete;
    scan.removed_guids = changed.removed_guids;
    changed.users.add_to(&mut scan);
    let mut index = GroupIndex::default();
    let groups_by_version = !scan.complete && !needs_index && location.group_base_dn.is_some();
    if let Some(first) = groups_first.filter(|_| scan.complete) {
        scan.groups = first.groups;
        scan.group_failures = first.group_failures;
    } else if !groups_by_version && (location.group_base_dn.is_some() || needs_index) {
        let naming_context = &cx.naming_context;
        read_groups(
            client,
            naming_context,
            settings,
            location,
            needs_index,
            &mut scan,
            &mut index,
        )
        .await
        .map_err(&unreadable)?;
    }
    if !scan.complete {
        // Every known user is listed only for a cycle that needs every record anyway.
        let everyone = match needs_every_record(location) {
            true => Some(known.everyone().await?),
            false => None,
        };
        let incremental = Incremental {
            attributes: &attributes,
            settings,
            location,
            index: &index,
            retrying: &known.due_for_retry(),
            everyone,
        };
        complete_incremental(client, &incremental, &mut scan)
            .await
            .map_err(&unreadable)?;
    }
    // After the users retried are read: they may join groups that did not change.
    if groups_by_version {
        let groups = GroupRead {
            data_store,
            settings,
            location,
            known,
            naming_context: &cx.naming_context,
        };
        read_changed_groups(client, &groups, &mut scan).await?;
    }
    apply_group_scope(
        &mut scan,
        &index,
        location,
        &settings.group_object_class,
        data_store,
    )?;
    Ok(LdapRead {
        scan,
        mechanism,
        cursor: changed.next_cursor,
        swept: changed.swept,
    })
}

/// RFC 4533 content synchronization: the server sends what changed since the cookie (or
/// everything, without one, or when it asks for a full refresh).
async fn read_content_sync(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    cookie: Option<String>,
) -> Result<Changed, SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    let Some(cookie) = cookie.and_then(|c| BASE64.decode(c).ok()) else {
        return read_all_by_content_sync(client, cx).await;
    };
    let refresh = match client
        .sync_refresh(cx.base, &cx.filter, &cx.attrs, Some(cookie))
        .await
    {
        Err(LdapError::SyncRefreshRequired(reason)) => {
            tracing::info!(data_store = cx.data_store, %reason, "the server asks for a full refresh");
            return read_all_by_content_sync(client, cx).await;
        }
        other => other,
    }
    .map_err(&unreadable)?;
    let next_cursor = refresh
        .cookie
        .as_ref()
        .map(|c| BASE64.encode(c))
        .unwrap_or_default();
    let mut removed_guids = Vec::new();
    // The server names deleted entries by their entryUUID: usable only when that is the
    // channel's GUID attribute; otherwise deletes are found by a sweep, as with timestamps.
    let uuid_is_guid = cx
        .settings
        .entry_guid_attribute
        .eq_ignore_ascii_case("entryUUID");
    let mut swept = false;
    if !uuid_is_guid {
        // The server names what left by entryUUID, which is not this channel's key: a sweep
        // tells who, when the server says something left (or when a sweep is due anyway).
        let something_left = !refresh.deleted.is_empty() || refresh.deletes_by_absence;
        if something_left || cx.sweeps() {
            removed_guids = sweep_every(client, cx).await?;
            swept = true;
        }
    } else {
        let changed_guids: HashSet<&str> = refresh
            .changed
            .iter()
            .filter_map(|r| r.first_text(&cx.settings.entry_guid_attribute))
            .collect();
        // The LDAP client names entries by their entryUUID, which is the GUID here.
        removed_guids = refresh.deleted.iter().map(EntryGuid::from).collect();
        if refresh.deletes_by_absence {
            let present: HashSet<&str> = refresh.present.iter().map(String::as_str).collect();
            let there = |guid: &EntryGuid| {
                present.contains(guid.as_str()) || changed_guids.contains(guid.as_str())
            };
            removed_guids.extend(cx.known.absent(&there).await?.into_iter().map(|k| k.guid));
        }
    }
    Ok(Changed {
        users: Keyed::of(refresh.changed, cx.settings),
        removed_guids,
        complete: false,
        next_cursor,
        swept,
    })
}

/// A full read under content synchronization. A refresh without a cookie comes whole from the
/// server (RFC 4533 has no pages): it is asked for without attributes and not kept, for its
/// cookie only; the users are then read by a paged search, a page at a time. The cookie is
/// taken first, so that a change made during the read is sent again by the next refresh.
async fn read_all_by_content_sync(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
) -> Result<Changed, SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    let cookie = client
        .sync_cookie(cx.base, &cx.filter)
        .await
        .map_err(&unreadable)?;
    let (users, _) = read_pages(client, cx).await?;
    Ok(Changed {
        users,
        removed_guids: Vec::new(),
        complete: true,
        next_cursor: cookie.map(|c| BASE64.encode(c)).unwrap_or_default(),
        swept: true,
    })
}

/// Every user in scope by a paged search, each page handed to the read's pages as it comes;
/// with the newest timestamp read.
async fn read_pages(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
) -> Result<(Keyed, Option<String>), SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    let mut users = Keyed::default();
    let mut latest: Option<String> = None;
    let mut search = LdapClient::paged_search(cx.base, &cx.filter, &cx.attrs);
    while let Some(page) = client.next_page(&mut search).await.map_err(&unreadable)? {
        let newest = latest_timestamp(&page, &cx.settings.timestamp_attribute);
        latest = latest.take().max(newest);
        let page = Keyed::of(page, cx.settings).kept(cx.pages).await?;
        users.users.extend(page.users);
        users.failures.extend(page.failures);
    }
    Ok((users, latest))
}

/// Active Directory's DirSync: the objects changed since the cookie, partial; each one in scope
/// is read whole.
async fn read_dirsync(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    cookie: &str,
) -> Result<Changed, SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    let cookie = BASE64.decode(cookie).ok();
    let mut wanted: Vec<&str> = cx.attrs.clone();
    wanted.push("isDeleted");
    let class_filter = format!("(objectClass={})", cx.settings.user_object_class);
    let changes = client
        .dirsync(&cx.naming_context, &class_filter, &wanted, cookie)
        .await
        .map_err(&unreadable)?;
    let normalized_base = normalize_dn(cx.base);
    let mut records = Vec::new();
    let mut removed_guids = Vec::new();
    // Entries changed out of scope: removed if the channel knows them.
    let mut gone_out = Vec::new();
    // Something left the scope that DirSync cannot name by the channel's GUID attribute.
    let mut unnamed_left = false;
    for partial in changes.changed {
        // DirSync names objects by objectGUID; another GUID attribute is known only from the
        // whole entry.
        let guid = entry_guid(&to_entry(&partial), cx.settings).ok();
        let deleted = partial
            .first_text("isDeleted")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if deleted {
            unnamed_left |= guid.is_none();
            removed_guids.extend(guid);
            continue;
        }
        // DirSync sends only what changed: read the whole entry, in scope or not.
        let full = if is_within(&normalize_dn(&partial.dn), &normalized_base) {
            client
                .read_matching(&partial.dn, &cx.filter, &cx.attrs)
                .await
                .map_err(&unreadable)?
        } else {
            None
        };
        match (full, guid) {
            (Some(record), _) => records.push(record),
            // Moved below another OU, or no longer matching the user filter.
            (None, Some(guid)) => gone_out.push(guid),
            // Out of scope (moved out, no longer matching, or never a user of the channel,
            // such as a computer): its key, read by DN, tells whether the channel knows it.
            // Without a key it cannot be a known user (unless its key went at the same time,
            // which the scheduled sweep finds).
            (None, None) => {
                let guid_attribute = [cx.settings.entry_guid_attribute.as_str()];
                let key = client
                    .read(&partial.dn, &guid_attribute)
                    .await
                    .map_err(&unreadable)?
                    .and_then(|r| entry_guid(&to_entry(&r), cx.settings).ok());
                gone_out.extend(key);
            }
        }
    }
    if !gone_out.is_empty() {
        removed_guids.extend(cx.known.among(&gone_out).await?.into_iter().map(|k| k.guid));
    }
    let keyed_by_object_guid = cx
        .settings
        .entry_guid_attribute
        .eq_ignore_ascii_case("objectGUID");
    // Tombstones carry objectGUID only: with another key, a sweep tells who left. A memberOf
    // filter is left by changing a group, which DirSync reports, not the user.
    let swept = (!keyed_by_object_guid && (unnamed_left || cx.sweep_due)) || cx.sweep_at_every_read;
    if swept {
        removed_guids = sweep_every(client, cx).await?;
    }
    Ok(Changed {
        users: Keyed::of(records, cx.settings),
        removed_guids,
        complete: false,
        next_cursor: BASE64.encode(&changes.cookie),
        swept,
    })
}

/// Every user in scope, with the cursor the next incremental read of `mechanism` starts from.
async fn read_everything(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    mechanism: ChangeDetection,
    dse: &RootDse,
) -> Result<Changed, SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    // A first DirSync pass (GUIDs only) gives the cookie for the next cycle. Taken before the
    // read, so that a change made during the read is seen again.
    let dirsync_cookie = if mechanism == ChangeDetection::DirSync {
        let guid = cx.settings.entry_guid_attribute.as_str();
        let class_filter = format!("(objectClass={})", cx.settings.user_object_class);
        let first = client
            .dirsync(&cx.naming_context, &class_filter, &[guid], None)
            .await
            .map_err(&unreadable)?;
        BASE64.encode(&first.cookie)
    } else {
        String::new()
    };
    // A page at a time: what the pages keep is held, not every entry.
    let (users, latest) = read_pages(client, cx).await?;
    let next_cursor = match mechanism {
        ChangeDetection::DirSync => dirsync_cookie,
        // A USN means something on one domain controller only: the cursor names it.
        ChangeDetection::ActiveDirectoryUsn => dse
            .highest_committed_usn
            .map(|u| format!("{u}@{}", client.url()))
            .unwrap_or_default(),
        ChangeDetection::Timestamp | ChangeDetection::TimestampNoNegation => {
            latest.unwrap_or_default()
        }
        _ => String::new(),
    };
    Ok(Changed {
        users,
        removed_guids: Vec::new(),
        complete: true,
        next_cursor,
        swept: true,
    })
}

/// The users changed since the cursor, by USN or timestamp. A delete leaves no USN or timestamp
/// behind: the users that left the scope are those changed anywhere in the naming context but
/// not in scope, and Active Directory's tombstones; a sweep of the GUIDs in scope, when due,
/// finds every delete (an entry deleted outside Active Directory, or whose tombstone the bind
/// account cannot see).
async fn read_changed_since(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    mechanism: ChangeDetection,
    cursor: String,
    dse: &RootDse,
) -> Result<Changed, SourceError> {
    let unreadable = unreadable_by(cx.data_store);
    let settings = cx.settings;
    let changed_filter = match mechanism {
        ChangeDetection::ActiveDirectoryUsn => {
            let usn: u64 = usn_of(&cursor).unwrap_or(0);
            format!("({}>={})", settings.usn_attribute, usn + 1)
        }
        ChangeDetection::Timestamp => format!(
            "(!({}<={}))",
            settings.timestamp_attribute,
            one_second_before(&cursor).unwrap_or_else(|| cursor.clone())
        ),
        _ => format!("({}>={cursor})", settings.timestamp_attribute),
    };
    // Before the users in scope: an entry changed after this search and in scope is among
    // them, so what this finds and they lack has left the scope.
    let anywhere = changed_anywhere(client, cx, &changed_filter).await;
    let records = match &anywhere {
        // The users in scope among them, each read by DN (in scope when below the base DN and
        // matching the filter) rather than by a second search by version, which a NOT filter
        // makes a scan of the whole directory on OpenLDAP. An entry changed since is read by
        // the next cycle (the cursor is this search's newest change).
        Ok(anywhere) if anywhere.entries.len() <= READ_BY_DN_MAX => {
            let base = normalize_dn(cx.base);
            let mut records = Vec::new();
            for entry in &anywhere.entries {
                if !is_within(&normalize_dn(&entry.dn), &base) {
                    continue;
                }
                let found = client
                    .read_matching(&entry.dn, &cx.filter, &cx.attrs)
                    .await
                    .map_err(&unreadable)?;
                records.extend(found);
            }
            records
        }
        _ => {
            let mut records = Vec::new();
            let filter = format!("(&{}{changed_filter})", cx.filter);
            client
                .search_subtree(cx.base, &filter, &cx.attrs, |r| records.push(r))
                .await
                .map_err(&unreadable)?;
            records
        }
    };
    let left = match &anywhere {
        Ok(anywhere) if !cx.sweeps() => {
            left_the_scope(client, cx, anywhere, &records, &changed_filter).await?
        }
        Ok(_) => None,
        Err(reason) => {
            tracing::warn!(data_store = cx.data_store, %reason, "the changes outside the base DN cannot be read; sweeping for deletes instead");
            None
        }
    };
    // No answer without a sweep: one now.
    let swept = left.is_none();
    let removed_guids = match left {
        Some(left) => left,
        None => sweep_every(client, cx).await?,
    };
    let next_cursor = match mechanism {
        ChangeDetection::ActiveDirectoryUsn => dse
            .highest_committed_usn
            .map(|u| format!("{u}@{}", client.url()))
            .unwrap_or(cursor),
        // The newest change seen anywhere, read first: a user in scope changed later is read
        // again by the next cycle rather than missed.
        _ => match &anywhere {
            Ok(anywhere) => anywhere.latest.clone(),
            Err(_) => latest_timestamp(&records, &settings.timestamp_attribute),
        }
        .map(|t| t.max(cursor.clone()))
        .unwrap_or(cursor),
    };
    Ok(Changed {
        users: Keyed::of(records, settings),
        removed_guids,
        complete: false,
        next_cursor,
        swept,
    })
}

/// Up to how many changed entries an incremental read by USN or timestamp reads one by one.
const READ_BY_DN_MAX: usize = 1_000;

/// The entries of the user object class changed anywhere in the naming context: their GUIDs
/// and the newest timestamp among them.
struct ChangedAnywhere {
    entries: Vec<ChangedEntry>,
    latest: Option<String>,
}

/// An entry changed anywhere: its DN, and its GUID with the raw value it was made from (none
/// without one, or for a DN key).
struct ChangedEntry {
    dn: String,
    guid: Option<EntryGuid>,
    raw: Option<Vec<u8>>,
}

async fn changed_anywhere(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    changed_filter: &str,
) -> Result<ChangedAnywhere, LdapError> {
    let settings = cx.settings;
    let filter = format!(
        "(&(objectClass={}){changed_filter})",
        settings.user_object_class
    );
    let attributes = [
        settings.entry_guid_attribute.as_str(),
        settings.timestamp_attribute.as_str(),
    ];
    let mut found = ChangedAnywhere {
        entries: Vec::new(),
        latest: None,
    };
    client
        .search_subtree(&cx.naming_context, &filter, &attributes, |record| {
            if let Some(stamp) = record.first_text(&settings.timestamp_attribute)
                && found.latest.as_deref().is_none_or(|l| stamp > l)
            {
                found.latest = Some(stamp.to_owned());
            }
            let guid = entry_guid(&to_entry(&record), settings).ok();
            let raw = record
                .values(&settings.entry_guid_attribute)
                .next()
                .map(<[u8]>::to_vec);
            found.entries.push(ChangedEntry {
                dn: record.dn,
                guid,
                raw,
            });
        })
        .await?;
    Ok(found)
}

/// The known users that left the scope since the cursor: changed anywhere but not in scope
/// (`in_scope`, read after them), and, on Active Directory, deleted. `None` when that cannot be
/// told without a sweep (the tombstones could not be read).
async fn left_the_scope(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    anywhere: &ChangedAnywhere,
    in_scope: &[RawEntry],
    changed_filter: &str,
) -> Result<Option<Vec<EntryGuid>>, SourceError> {
    let settings = cx.settings;
    let in_scope: HashSet<EntryGuid> = in_scope
        .iter()
        .filter_map(|r| entry_guid(&to_entry(r), settings).ok())
        .collect();
    let outside: Vec<EntryGuid> = anywhere
        .entries
        .iter()
        .filter_map(|e| e.guid.as_ref())
        .filter(|guid| !in_scope.contains(*guid))
        .cloned()
        .collect();
    let mut left: Vec<EntryGuid> = match outside.is_empty() {
        true => Vec::new(),
        false => cx
            .known
            .among(&outside)
            .await?
            .into_iter()
            .map(|k| k.guid)
            .collect(),
    };
    if !left.is_empty() {
        // A known user's GUID value seen outside the scope may still be in it: another entry
        // holding the same value (an attribute unique within the scope only), or the user
        // renamed while the scope was read. Asked again by value, in scope.
        let known: HashSet<&EntryGuid> = left.iter().collect();
        let values: Vec<&[u8]> = anywhere
            .entries
            .iter()
            .filter(|e| e.guid.as_ref().is_some_and(|g| known.contains(g)))
            .filter_map(|e| e.raw.as_deref())
            .collect();
        let still = in_scope_by_value(client, cx, &values)
            .await
            .map_err(unreadable_by(cx.data_store))?;
        left.retain(|guid| !still.contains(guid));
    }
    if cx.tombstones {
        match tombstones(client, cx, changed_filter).await {
            Ok(deleted) if !deleted.is_empty() => {
                left.extend(cx.known.among(&deleted).await?.into_iter().map(|k| k.guid))
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(data_store = cx.data_store, %error, "deleted entries cannot be read; sweeping for deletes instead");
                return Ok(None);
            }
        }
    }
    Ok(Some(left))
}

/// The GUIDs of the users in scope whose GUID attribute holds one of `values` (escaped byte by
/// byte, so that binary GUIDs match too), 50 values a search.
async fn in_scope_by_value(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    values: &[&[u8]],
) -> Result<HashSet<EntryGuid>, LdapError> {
    let guid_attribute = cx.settings.entry_guid_attribute.as_str();
    let mut found = HashSet::new();
    for chunk in values.chunks(MEMBER_SEARCH_CHUNK) {
        let any: String = chunk
            .iter()
            .map(|value| {
                let escaped: String = value.iter().map(|b| format!("\\{b:02x}")).collect();
                format!("({guid_attribute}={escaped})")
            })
            .collect();
        let filter = format!("(&{}(|{any}))", cx.filter);
        client
            .search_subtree(cx.base, &filter, &[guid_attribute], |record| {
                found.extend(entry_guid(&to_entry(&record), cx.settings).ok());
            })
            .await?;
    }
    Ok(found)
}

/// The GUIDs of the entries Active Directory deleted since the cursor (their tombstones). An
/// account that may not see tombstones sees none, which is not an error: the sweep every
/// `delete_sweep_minutes` finds those deletes.
async fn tombstones(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
    changed_filter: &str,
) -> Result<Vec<EntryGuid>, LdapError> {
    let filter = format!("(&(isDeleted=TRUE){changed_filter})");
    let guid_attribute = cx.settings.entry_guid_attribute.as_str();
    let mut guids = Vec::new();
    client
        .search_deleted(&cx.naming_context, &filter, &[guid_attribute], |record| {
            if let Ok(guid) = entry_guid(&to_entry(&record), cx.settings) {
                guids.push(guid);
            }
        })
        .await?;
    Ok(guids)
}

/// The USN of an `active-directory-usn` cursor (`USN@server`).
fn usn_of(cursor: &str) -> Option<u64> {
    cursor
        .split_once('@')
        .map_or(cursor, |(usn, _)| usn)
        .parse()
        .ok()
}

/// The known users whose GUID is no longer in scope: one search reading only the GUID
/// attribute, compared with the known users a page at a time.
async fn sweep_every(
    client: &mut LdapClient,
    cx: &ReadContext<'_>,
) -> Result<Vec<EntryGuid>, SourceError> {
    let present = sweep_present(client, cx.base, &cx.filter, cx.settings)
        .await
        .map_err(unreadable_by(cx.data_store))?;
    let there = |guid: &EntryGuid| present.contains(guid) || placeholder(guid, cx.settings);
    Ok(cx
        .known
        .absent(&there)
        .await?
        .into_iter()
        .map(|k| k.guid)
        .collect())
}

/// The GUIDs of the users in scope.
async fn sweep_present(
    client: &mut LdapClient,
    base: &str,
    filter: &str,
    settings: &EffectiveSourceSettings,
) -> Result<HashSet<EntryGuid>, LdapError> {
    let mut present: HashSet<EntryGuid> = HashSet::new();
    let guid_attribute = settings.entry_guid_attribute.as_str();
    client
        .search_subtree(base, filter, &[guid_attribute], |record| {
            if let Ok(guid) = entry_guid(&to_entry(&record), settings) {
                present.insert(guid);
            }
        })
        .await?;
    Ok(present)
}

/// Records keyed by DN stand for entries that failed for want of a GUID: they are retried by
/// DN, not judged by a GUID sweep.
fn placeholder(guid: &EntryGuid, settings: &EffectiveSourceSettings) -> bool {
    !settings.use_dn_when_guid_missing && guid.is_dn_key()
}

/// Users read, keyed; those without a key fail alone.
#[derive(Default)]
struct Keyed {
    users: Vec<SourceEntry>,
    failures: Vec<EntryFailure>,
}

impl Keyed {
    fn of(records: Vec<RawEntry>, settings: &EffectiveSourceSettings) -> Keyed {
        let mut keyed = Keyed::default();
        for record in records {
            match keyed_entry(&record, settings) {
                Ok(entry) => keyed.users.push(entry),
                Err(reason) => keyed.failures.push(EntryFailure {
                    dn: record.dn,
                    reason,
                }),
            }
        }
        keyed
    }

    /// Adds these users (and failures) to the scan's.
    fn add_to(self, scan: &mut SourceScan) {
        scan.users.extend(self.users);
        scan.failures.extend(self.failures);
    }

    /// The users of a full read that `pages` keeps (all of them without it).
    async fn kept(self, pages: Option<&dyn FullReadPages>) -> Result<Keyed, SourceError> {
        Ok(Keyed {
            users: keep_pages(pages, self.users).await?,
            failures: self.failures,
        })
    }
}

async fn read_groups(
    client: &mut LdapClient,
    naming_context: &str,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
    needs_index: bool,
    scan: &mut SourceScan,
    index: &mut GroupIndex,
) -> Result<(), LdapError> {
    let class = format!("(objectClass={})", settings.group_object_class);
    let attributes = group_attributes(settings);
    let group_base = location.group_base_dn.as_deref().map(normalize_dn);
    let mut bases: Vec<String> = Vec::new();
    if needs_index {
        // Scope groups and the groups nested in them may live anywhere in the directory.
        bases.push(naming_context.to_owned());
    } else if let Some(group_base) = &location.group_base_dn {
        bases.push(group_base.clone());
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut groups = Vec::new();
    for base in bases {
        client
            .search_subtree(&base, &class, &attributes, |record| {
                if seen.insert(normalize_dn(&record.dn)) {
                    groups.push(record);
                }
            })
            .await?;
    }
    let provisioned_filter = location.group_filter.as_deref().map(str::trim);
    let mut matching: Option<HashSet<String>> = None;
    if let (Some(filter), Some(group_base)) = (provisioned_filter, &location.group_base_dn) {
        let mut names = HashSet::new();
        client
            .search_subtree(group_base, &format!("(&{class}{filter})"), &["1.1"], |r| {
                names.insert(normalize_dn(&r.dn));
            })
            .await?;
        matching = Some(names);
    }
    for record in groups {
        let entry = to_entry(&record);
        let dn = normalize_dn(&entry.dn);
        let provisioned = group_base.as_deref().is_some_and(|g| is_within(&dn, g))
            && matching.as_ref().is_none_or(|m| m.contains(&dn));
        let guid = entry_guid(&entry, settings);
        let mut group = to_group(entry, guid.clone().unwrap_or_default(), settings);
        group.stamp = of_server(group.stamp, client.url());
        // Only a scope by group looks members up in the index: a million member DNs are not
        // held twice for nothing.
        if needs_index {
            index.insert(&group.dn, group.member_dns.clone());
        }
        if !provisioned {
            continue;
        }
        match guid {
            Ok(_) => scan.groups.push(group),
            Err(reason) => scan.group_failures.push(EntryFailure {
                dn: record.dn.clone(),
                reason,
            }),
        }
    }
    Ok(())
}

/// What reading a channel's groups incrementally works with.
struct GroupRead<'a> {
    data_store: &'a str,
    settings: &'a EffectiveSourceSettings,
    location: &'a SourceLocation,
    known: &'a Known<'a>,
    naming_context: &'a str,
}

/// The attributes a group is read whole with: its name, GUID, members and version.
fn group_attributes(settings: &EffectiveSourceSettings) -> Vec<&str> {
    let mut attributes = vec![
        "cn",
        settings.entry_guid_attribute.as_str(),
        settings.group_member_attribute.as_str(),
    ];
    attributes.extend(STAMP_ATTRIBUTES);
    attributes
}

/// How many users one search for the groups of new users names.
const MEMBER_SEARCH_CHUNK: usize = 50;

/// An incremental read's groups. The version of every group in scope is read (no members);
/// then, whole, the groups whose version moved, those the channel must read whole again, and
/// those a user the read found and the target does not hold is a member of (it may have
/// joined the group before it came into scope or could be provisioned). The channel's groups
/// missing from the versions are gone. When most groups must be read whole, one search reads
/// them all instead.
async fn read_changed_groups(
    client: &mut LdapClient,
    read: &GroupRead<'_>,
    scan: &mut SourceScan,
) -> Result<(), SourceError> {
    let GroupRead {
        data_store,
        settings,
        location,
        known,
        naming_context,
    } = *read;
    let unreadable = unreadable_by(data_store);
    let Some(group_base) = location.group_base_dn.as_deref() else {
        return Ok(());
    };
    let class = format!("(objectClass={})", settings.group_object_class);
    let filter = match location.group_filter.as_deref().map(str::trim) {
        Some(extra) if !extra.is_empty() => format!("(&{class}{extra})"),
        _ => class,
    };
    let mut version_attributes = vec![settings.entry_guid_attribute.as_str()];
    version_attributes.extend(STAMP_ATTRIBUTES);
    let mut versions: Vec<RawEntry> = Vec::new();
    client
        .search_subtree(group_base, &filter, &version_attributes, |r| {
            versions.push(r)
        })
        .await
        .map_err(&unreadable)?;
    let stored: HashMap<&EntryGuid, Option<&str>> = known
        .groups()
        .iter()
        .map(|g| (&g.guid, g.source_stamp.as_deref()))
        .collect();
    let recent = known
        .groups()
        .iter()
        .filter_map(|g| g.source_stamp.as_deref()?.strip_prefix(TIMESTAMP_STAMP))
        .max()
        .and_then(one_second_before);
    let mut present: HashSet<EntryGuid> = HashSet::new();
    let mut failures = Vec::new();
    let mut to_read: BTreeSet<String> = BTreeSet::new();
    for record in &versions {
        let entry = to_entry(record);
        match entry_guid(&entry, settings) {
            Ok(guid) => {
                let now = of_server(group_stamp(&entry), client.url());
                let before = stored.get(&guid).copied().flatten();
                if must_read_whole(before, now.as_deref(), recent.as_deref()) {
                    to_read.insert(record.dn.clone());
                }
                present.insert(guid);
            }
            Err(reason) => failures.push(EntryFailure {
                dn: record.dn.clone(),
                reason,
            }),
        }
    }
    let joining = joining_user_dns(known, scan).await?;
    for chunk in joining.chunks(MEMBER_SEARCH_CHUNK) {
        let any: String = chunk
            .iter()
            .map(|dn| {
                format!(
                    "({}={})",
                    settings.group_member_attribute,
                    escape_filter_value(dn)
                )
            })
            .collect();
        client
            .search_subtree(group_base, &format!("(&{filter}(|{any}))"), &["1.1"], |r| {
                to_read.insert(r.dn);
            })
            .await
            .map_err(&unreadable)?;
    }
    if to_read.len() * 2 > versions.len() {
        let mut index = GroupIndex::default();
        return read_groups(
            client,
            naming_context,
            settings,
            location,
            false,
            scan,
            &mut index,
        )
        .await
        .map_err(&unreadable);
    }
    scan.groups_incremental = true;
    scan.groups_in_scope = versions.len();
    scan.group_failures = failures;
    scan.removed_group_guids = known
        .groups()
        .iter()
        .filter(|g| !present.contains(&g.guid))
        .map(|g| g.guid.clone())
        .collect();
    let attributes = group_attributes(settings);
    for dn in to_read {
        // Gone since the versions were read: the next read finds it missing.
        let Some(record) = client
            .read_matching(&dn, &filter, &attributes)
            .await
            .map_err(&unreadable)?
        else {
            continue;
        };
        let entry = to_entry(&record);
        match entry_guid(&entry, settings) {
            Ok(guid) => {
                let mut group = to_group(entry, guid, settings);
                group.stamp = of_server(group.stamp, client.url());
                scan.groups.push(group);
            }
            Err(reason) => scan.group_failures.push(EntryFailure { dn, reason }),
        }
    }
    Ok(())
}

/// A version only the server that gave it can compare names that server: Active Directory
/// counts `uSNChanged` per domain controller, and another one may give the same number to
/// another state of the group.
fn of_server(stamp: Option<String>, server: &str) -> Option<String> {
    stamp.map(|stamp| match stamp.strip_prefix("uSNChanged:") {
        Some(usn) => format!("uSNChanged@{server}:{usn}"),
        None => stamp,
    })
}

/// The prefix of a version that is a timestamp (a second's resolution).
const TIMESTAMP_STAMP: &str = "modifyTimestamp:";

/// Whether a group must be read whole: the channel never did so, or forgot its version
/// (`before` is `None`), the server gives it no version, or its version moved. A timestamp has
/// a second's resolution: a group changed again within the second of the newest version the
/// channel holds (`recent`, one second before it) may keep its timestamp, so it is read again.
fn must_read_whole(before: Option<&str>, now: Option<&str>, recent: Option<&str>) -> bool {
    let (Some(before), Some(now)) = (before, now) else {
        return true;
    };
    before != now
        || now
            .strip_prefix(TIMESTAMP_STAMP)
            .zip(recent)
            .is_some_and(|(time, recent)| time >= recent)
}

/// The DNs of the users this read found that the target does not hold: new to the channel, or
/// kept out of the target until now (a failed create, disabled, an option). They may be
/// members of groups that did not change since they joined, which the group records do not
/// list (a group record lists the members in the target, and its version does not wait for
/// the others).
async fn joining_user_dns(
    known: &Known<'_>,
    scan: &SourceScan,
) -> Result<Vec<String>, SourceError> {
    let guids: Vec<EntryGuid> = scan.users.iter().map(|u| u.guid.clone()).collect();
    let in_target: HashSet<EntryGuid> = known
        .among(&guids)
        .await?
        .into_iter()
        .filter(|k| k.in_target)
        .map(|k| k.guid)
        .collect();
    Ok(scan
        .users
        .iter()
        .filter(|u| !in_target.contains(&u.guid))
        .map(|u| u.dn.clone())
        .collect())
}

/// A value as an LDAP filter may hold it (RFC 4515): `*`, `(`, `)`, `\` and NUL escaped.
fn escape_filter_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => escaped.push_str("\\2a"),
            '(' => escaped.push_str("\\28"),
            ')' => escaped.push_str("\\29"),
            '\\' => escaped.push_str("\\5c"),
            '\0' => escaped.push_str("\\00"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// After an incremental read: users that left the scope group are removed, users that joined
/// it (their entry unchanged) and users whose last attempt failed are read by DN, and the rest
/// are listed as unchanged.
async fn complete_incremental(
    client: &mut LdapClient,
    incremental: &Incremental<'_>,
    scan: &mut SourceScan,
) -> Result<(), LdapError> {
    let Incremental {
        attributes,
        settings,
        location,
        index,
        retrying,
        everyone,
    } = *incremental;
    let base = normalize_dn(&location.base_dn);
    let changed: HashSet<&EntryGuid> = scan.users.iter().map(|u| &u.guid).collect();
    let removed: HashSet<&EntryGuid> = scan.removed_guids.iter().collect();
    let scope = location
        .user_group_dn
        .as_deref()
        .and_then(|dn| index.members_of(dn, location.user_nested_search));
    let known = everyone.unwrap_or_default();
    let known_dns: HashSet<String> = known.iter().map(|k| normalize_dn(&k.dn)).collect();
    let changed_dns: HashSet<String> = scan.users.iter().map(|u| normalize_dn(&u.dn)).collect();
    // Users whose last attempt failed are read again, by DN, with their GUID to check.
    let mut to_read: Vec<(String, Option<&KnownUser>)> = retrying
        .iter()
        .filter(|k| !changed.contains(&k.guid) && !removed.contains(&k.guid))
        .map(|k| (k.dn.clone(), Some(k)))
        .collect();
    if let Some(scope) = &scope {
        to_read.extend(
            scope
                .iter()
                .filter(|dn| {
                    is_within(dn, &base)
                        && !known_dns.contains(*dn)
                        && !changed_dns.contains(*dn)
                        && !index.contains(dn)
                })
                .map(|dn| (dn.clone(), None)),
        );
    }
    let attrs: Vec<&str> = attributes.iter().map(String::as_str).collect();
    let filter = user_filter(settings, location);
    let mut retry_not_found: Vec<KnownUser> = Vec::new();
    for (dn, retry) in to_read {
        // The entry itself, if it still matches the channel's filter.
        let found = client.read_matching(&dn, &filter, &attrs).await?;
        match found {
            Some(record) => Keyed::of(vec![record], settings).add_to(scan),
            None => retry_not_found.extend(retry.cloned()),
        }
    }
    // A retried user not at its DN may have been deleted (a disable that failed, whose delete
    // notice the server will not repeat) or renamed: one GUID sweep tells which.
    if !retry_not_found.is_empty() {
        let present = sweep_present(client, &location.base_dn, &filter, settings).await?;
        scan.removed_guids.extend(
            retry_not_found
                .into_iter()
                .filter(|k| !present.contains(&k.guid) && !placeholder(&k.guid, settings))
                .map(|k| k.guid),
        );
    }
    let mut removed: HashSet<EntryGuid> = scan.removed_guids.iter().cloned().collect();
    for user in known {
        let dn = normalize_dn(&user.dn);
        let out_of_scope = scope.as_ref().is_some_and(|s| !s.contains(&dn));
        if out_of_scope && removed.insert(user.guid.clone()) {
            scan.removed_guids.push(user.guid.clone());
        }
    }
    let changed_now: HashSet<&EntryGuid> = scan.users.iter().map(|u| &u.guid).collect();
    scan.unchanged_users = known
        .iter()
        .filter(|k| !changed_now.contains(&k.guid) && !removed.contains(&k.guid))
        .map(|k| (k.dn.clone(), k.guid.clone()))
        .collect();
    Ok(())
}

/// What completing an incremental read works with.
#[derive(Clone, Copy)]
struct Incremental<'a> {
    attributes: &'a [String],
    settings: &'a EffectiveSourceSettings,
    location: &'a SourceLocation,
    index: &'a GroupIndex,
    /// Known users whose retry is due.
    retrying: &'a [KnownUser],
    /// Every known user, when the cycle needs them listed (`SourceScan::unchanged_users`).
    everyone: Option<&'a [KnownUser]>,
}

/// The latest value of the timestamp attribute among the entries. GeneralizedTime values of one
/// server share a format, so they sort as text.
fn latest_timestamp(records: &[RawEntry], attribute: &str) -> Option<String> {
    records
        .iter()
        .filter_map(|r| r.first_text(attribute))
        .max()
        .map(str::to_owned)
}

/// `YYYYMMDDHHMMSS[.f]Z` one second earlier, so that "newer than" (with negation) still
/// re-reads the last second seen: a timestamp has one-second resolution, and an entry changed
/// later in that same second must not be missed.
pub fn one_second_before(timestamp: &str) -> Option<String> {
    let digits = timestamp.get(0..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits[range].parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(8..10)?, number(10..12)?, number(12..14)?);
    let days = days_from_civil(year, month, day);
    let total = days * 86_400 + hour * 3600 + minute * 60 + second - 1;
    let (days, rest) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_read_whole_when_its_version_moved_or_is_unknown() {
        let csn = "entryCSN:20261204101500.000001Z#000000#000#000000";
        let later = "entryCSN:20261204101500.000002Z#000000#000#000000";
        assert!(!must_read_whole(Some(csn), Some(csn), None));
        assert!(must_read_whole(Some(csn), Some(later), None));
        // Never read whole with nothing waiting, or a server that gives no version.
        assert!(must_read_whole(None, Some(csn), None));
        assert!(must_read_whole(Some(csn), None, None));
        // A timestamp within the second of the newest one held may hide a second change.
        let time = |t: &str| format!("{TIMESTAMP_STAMP}{t}");
        let recent = one_second_before("20261204101500Z");
        let recent = recent.as_deref();
        assert!(must_read_whole(
            Some(&time("20261204101500Z")),
            Some(&time("20261204101500Z")),
            recent
        ));
        assert!(must_read_whole(
            Some(&time("20261204101459Z")),
            Some(&time("20261204101459Z")),
            recent
        ));
        assert!(!must_read_whole(
            Some(&time("20261204101458Z")),
            Some(&time("20261204101458Z")),
            recent
        ));
        // Versions that are counters or CSNs are exact whatever their age.
        assert!(!must_read_whole(
            Some("uSNChanged:12"),
            Some("uSNChanged:12"),
            recent
        ));
    }

    #[test]
    fn a_usn_names_the_domain_controller_that_counted_it() {
        let dc1 = of_server(Some("uSNChanged:12".into()), "ldap://dc1");
        let dc2 = of_server(Some("uSNChanged:12".into()), "ldap://dc2");
        assert_eq!(dc1.as_deref(), Some("uSNChanged@ldap://dc1:12"));
        assert!(must_read_whole(dc1.as_deref(), dc2.as_deref(), None));
        let csn = Some("entryCSN:20261204101500.000001Z#000000#000#000000".to_owned());
        assert_eq!(of_server(csn.clone(), "ldap://dc1"), csn);
    }

    #[test]
    fn filter_values_escape_what_rfc_4515_reserves() {
        assert_eq!(
            escape_filter_value("cn=a*b (x)\\2c,dc=example\0"),
            "cn=a\\2ab \\28x\\29\\5c2c,dc=example\\00"
        );
        assert_eq!(
            escape_filter_value("uid=ann,ou=people"),
            "uid=ann,ou=people"
        );
    }

    #[test]
    fn one_second_before_crosses_minutes_days_and_years() {
        assert_eq!(
            one_second_before("20261129101500Z").unwrap(),
            "20261129101459Z"
        );
        assert_eq!(
            one_second_before("20270101000000Z").unwrap(),
            "20261231235959Z"
        );
        assert_eq!(
            one_second_before("20240301000000.0Z").unwrap(),
            "20240229235959Z"
        );
        assert!(one_second_before("yesterday").is_none());
    }

    #[test]
    fn the_best_mechanism_the_server_offers() {
        let mut dse = RootDse::default();
        assert_eq!(
            choose_mechanism(ChangeDetection::Auto, &dse).unwrap(),
            ChangeDetection::Timestamp
        );
        dse.highest_committed_usn = Some(10);
        assert_eq!(
            choose_mechanism(ChangeDetection::Auto, &dse).unwrap(),
            ChangeDetection::ActiveDirectoryUsn
        );
        dse.supported_controls
            .insert(scimbridge_ldap::client::SYNC_CONTROL_OID.into());
        assert_eq!(
            choose_mechanism(ChangeDetection::Auto, &dse).unwrap(),
            ChangeDetection::ContentSync
        );
        let err = choose_mechanism(ChangeDetection::ContentSync, &RootDse::default()).unwrap_err();
        assert!(err.contains("syncprov"), "{err}");
    }

    #[test]
    fn a_full_read_after_new_settings_or_when_reconciliation_is_due() {
        let hour = 3_600_000;
        let state = SyncState {
            mechanism: ChangeDetection::ContentSync,
            cursor: "c".into(),
            settings_fingerprint: "f1".into(),
            last_full_read_ms: EpochMs::from_millis(10 * hour),
            last_sweep_ms: EpochMs::from_millis(10 * hour),
        };
        assert!(incremental_allowed(
            &state,
            "f1",
            24,
            EpochMs::from_millis(33 * hour)
        ));
        assert!(!incremental_allowed(
            &state,
            "f1",
            24,
            EpochMs::from_millis(34 * hour)
        ));
        assert!(!incremental_allowed(
            &state,
            "f2",
            24,
            EpochMs::from_millis(11 * hour)
        ));
        assert!(incremental_allowed(
            &state,
            "f1",
            0,
            EpochMs::from_millis(1000 * hour)
        ));
    }

    #[test]
    fn a_sweep_for_deletes_every_so_many_minutes_after_the_last_sweep_or_full_read() {
        let minute = 60_000;
        let at = |minutes: i64| EpochMs::from_millis(minutes * minute);
        let state = SyncState {
            mechanism: ChangeDetection::Timestamp,
            cursor: "20261204100000Z".into(),
            settings_fingerprint: "f1".into(),
            last_full_read_ms: at(100),
            last_sweep_ms: at(130),
        };
        assert!(!sweep_due(&state, 15, at(144)));
        assert!(sweep_due(&state, 15, at(145)));
        // 0: every read sweeps.
        assert!(sweep_due(&state, 0, at(130)));
        // A state saved before sweeps were dated: its full read was the last sweep.
        let older = SyncState {
            last_sweep_ms: EpochMs::default(),
            ..state
        };
        assert!(!sweep_due(&older, 15, at(114)));
        assert!(sweep_due(&older, 15, at(115)));
    }
}
