//! The LDAP client: connects to the first host of a data store that answers, binds, and reads
//! entries with paged searches, AD range retrieval and RFC 4533 content synchronization.
//!
//! ldap3 does the protocol; this module hides it behind plain types (entries come back as
//! [`RawEntry`]s, like the LDIF reader's) so that the engine never sees ldap3 and the client
//! can be swapped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ldap3::asn1::{PL, StructureTag};
use ldap3::controls::{
    Control, ControlType, EntryState, RawControl, RefreshMode, SyncDone, SyncInfo, SyncRequest,
    SyncState,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, ResultEntry, Scope, SearchOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::guid::{GuidLayout, print_guid};
use crate::ldif::{RawAttribute, RawEntry};

/// The OID of the RFC 4533 Sync Request control, as listed in the root DSE.
pub const SYNC_CONTROL_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// The OID of Active Directory's DirSync control.
pub const DIRSYNC_CONTROL_OID: &str = "1.2.840.113556.1.4.841";
/// The OID of the RFC 2696 paged results control.
pub const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
/// Active Directory's LDAP_SERVER_SHOW_DELETED_OID: a search sees deleted entries too.
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// A paged search, with the controls that go with every page.
struct Paging {
    extra: Vec<RawControl>,
}

/// LDAP result code e-syncRefreshRequired (RFC 4533 §2.5): the cookie is too old.
const SYNC_REFRESH_REQUIRED: u32 = 4096;

#[derive(Clone, PartialEq, Eq)]
pub enum Bind {
    Anonymous,
    Simple {
        dn: String,
        password: String,
    },
    /// SASL EXTERNAL: the server takes the identity from the TLS client certificate.
    SaslExternal,
}

impl std::fmt::Debug for Bind {
    // The password never reaches a log through Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bind::Anonymous => f.write_str("Anonymous"),
            Bind::Simple { dn, .. } => write!(f, "Simple {{ dn: {dn:?}, password: \"***\" }}"),
            Bind::SaslExternal => f.write_str("SaslExternal"),
        }
    }
}

/// How to reach and authenticate to a directory.
#[derive(Clone)]
pub struct ClientSettings {
    /// `ldap://host:port` or `ldaps://host:port`, tried in order until one answers.
    pub urls: Vec<String>,
    /// Upgrade `ldap://` connections with the StartTLS extended operation.
    pub start_tls: bool,
    /// PEM certificates trusted for TLS instead of the system's.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for SASL EXTERNAL (or servers that ask for one).
    pub client_certificate_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub bind: Bind,
    pub connect_timeout: Duration,
    /// Longest wait for any one answer of the server.
    pub operation_timeout: Duration,
    /// Entries per page of a paged search.
    pub page_size: u32,
}

impl std::fmt::Debug for ClientSettings {
    // Keys and passwords stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("urls", &self.urls)
            .field("start_tls", &self.start_tls)
            .field("bind", &self.bind)
            .field("client_certificate", &self.client_certificate_pem.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("no LDAP server answered: {0}")]
    Unreachable(String),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("bind as \"{dn}\" refused by {url}: {reason}")]
    BindRefused {
        url: String,
        dn: String,
        reason: String,
    },
    #[error("{dn} does not exist in the directory")]
    NoSuchObject { dn: String },
    /// The stored RFC 4533 cookie is too old for the server: a full refresh is needed.
    #[error("the server needs a full refresh: {0}")]
    SyncRefreshRequired(String),
    #[error("{operation} failed: {reason}")]
    Operation { operation: String, reason: String },
}

fn operation_error(operation: impl Into<String>, reason: impl ToString) -> LdapError {
    LdapError::Operation {
        operation: operation.into(),
        reason: reason.to_string(),
    }
}

/// What the root DSE says about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootDse {
    pub naming_contexts: Vec<String>,
    pub supported_controls: BTreeSet<String>,
    pub vendor_name: Option<String>,
    /// Active Directory only.
    pub highest_committed_usn: Option<u64>,
}

impl RootDse {
    pub fn supports_sync(&self) -> bool {
        self.supported_controls.contains(SYNC_CONTROL_OID)
    }

    pub fn supports_dirsync(&self) -> bool {
        self.supported_controls.contains(DIRSYNC_CONTROL_OID)
    }
}

/// What an RFC 4533 refresh reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRefresh {
    /// Entries added or changed since the cookie (all entries without a cookie).
    pub changed: Vec<RawEntry>,
    /// entryUUIDs of entries deleted or moved out of the search since the cookie.
    pub deleted: Vec<String>,
    /// entryUUIDs the server says are unchanged and still present (present phase).
    pub present: Vec<String>,
    /// The server used the present phase: every known entry neither changed nor present is gone.
    pub deletes_by_absence: bool,
    /// The cookie to send next time (the one sent, when the server sent no new one).
    pub cookie: Option<Vec<u8>>,
}

/// What a DirSync pass returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirSyncChanges {
    /// Objects changed since the cookie, with the changed attributes only (and objectGUID);
    /// deleted ones carry `isDeleted: TRUE`.
    pub changed: Vec<RawEntry>,
    pub cookie: Vec<u8>,
}

/// An RFC 4533 refreshAndPersist search: after its initial refresh, every change the server
/// makes below the base arrives as a notification, as it happens.
pub struct ChangeFeed {
    stream: ldap3::SearchStream<'static, String, Vec<String>>,
    refreshed: bool,
    /// Started from a cookie taken just before: the refresh holds only what changed since,
    /// which the feed reports. False once the feed runs without one.
    from_cookie: bool,
    /// To start again without the cookie when the server refuses it.
    ldap: Ldap,
    base: String,
}

impl ChangeFeed {
    /// Waits for the next change; `Ok(false)` when the server ended the search. A feed started
    /// again without the cookie the server refused reports a change: what changed since the
    /// cookie was taken is in no feed, so a cycle must read it.
    pub async fn next_change(&mut self) -> Result<bool, LdapError> {
        loop {
            // Drained before the connection reads more, as `LdapClient::refresh` does: a refresh
            // without a cookie lists every entry below the base.
            let next = tokio::task::unconstrained(self.stream.next()).await;
            let item = match next {
                Ok(Some(item)) => item,
                Ok(None) => {
                    let result = self.stream.finish().await;
                    if !self.refreshed && self.from_cookie && result.rc != 0 {
                        self.restart_without_cookie(&result).await?;
                        return Ok(true);
                    }
                    return Ok(false);
                }
                Err(e) => return Err(operation_error("change feed", describe(&e))),
            };
            if item.is_intermediate() {
                // The refresh phase ends with a Sync Info message saying refreshDone.
                match parse_sync_info(&item) {
                    Some(SyncInfo::RefreshDelete { refresh_done, .. })
                    | Some(SyncInfo::RefreshPresent { refresh_done, .. }) => {
                        self.refreshed |= refresh_done
                    }
                    _ => {}
                }
                continue;
            }
            if item.is_ref() {
                continue;
            }
            if self.refreshed || self.from_cookie && is_change(&item) {
                return Ok(true);
            }
        }
    }

    /// Whether the feed runs from a cookie (rather than from a refresh that lists every
    /// entry); a refused cookie is known once [`ChangeFeed::next_change`] has met the refusal.
    pub fn started_from_cookie(&self) -> bool {
        self.from_cookie
    }

    /// A server may refuse a cookie it did not give for this very search (RFC 4533 lets it):
    /// the feed starts again without one, listing every entry once. The cookie is forgotten
    /// only once the new search runs.
    async fn restart_without_cookie(
        &mut self,
        refusal: &ldap3::LdapResult,
    ) -> Result<(), LdapError> {
        tracing::warn!(
            base = %self.base,
            code = refusal.rc,
            reason = %refusal.text,
            "the directory refused the change feed's cookie: the feed starts without one, \
             listing every entry below the base first (changes made meanwhile wait for the list)"
        );
        self.stream = persist(&mut self.ldap, &self.base, None).await?;
        self.from_cookie = false;
        Ok(())
    }
}

/// An entry of a refresh that says it was added, modified or deleted (not merely present).
fn is_change(item: &ResultEntry) -> bool {
    item.1.iter().any(|Control(kind, raw)| {
        matches!(kind, Some(ControlType::SyncState))
            && raw
                .val
                .as_deref()
                .and_then(parse_sync_state)
                .is_some_and(|state| !matches!(state.state, EntryState::Present))
    })
}

/// Starts a refreshAndPersist search of every entry below `base`, attributes none.
async fn persist(
    ldap: &mut Ldap,
    base: &str,
    cookie: Option<Vec<u8>>,
) -> Result<ldap3::SearchStream<'static, String, Vec<String>>, LdapError> {
    let control: RawControl = SyncRequest {
        mode: RefreshMode::RefreshAndPersist,
        cookie,
        reload_hint: false,
    }
    .into();
    ldap.with_controls(control)
        .streaming_search(
            base,
            Scope::Subtree,
            "(objectClass=*)",
            vec!["1.1".to_owned()],
        )
        .await
        .map_err(|e| operation_error(format!("change feed of {base}"), describe(&e)))
}

/// A bound connection to one directory server.
pub struct LdapClient {
    ldap: Ldap,
    url: String,
    settings: ClientSettings,
}

impl LdapClient {
    /// Connects to the first URL that answers and binds. A refused bind is not retried on the
    /// other hosts: they share the accounts, so the answer would be the same.
    pub async fn connect(settings: &ClientSettings) -> Result<LdapClient, LdapError> {
        if settings.urls.is_empty() {
            return Err(LdapError::Unreachable("no LDAP URL is configured".into()));
        }
        let tls = tls_config(settings)?;
        let mut failures = Vec::new();
        for url in &settings.urls {
            let mut conn_settings = LdapConnSettings::new()
                .set_conn_timeout(settings.connect_timeout)
                .set_starttls(settings.start_tls && url.starts_with("ldap://"));
            if let Some(tls) = &tls {
                conn_settings = conn_settings.set_config(tls.clone());
            }
            let connected = tokio::time::timeout(
                settings.connect_timeout,
                LdapConnAsync::with_settings(conn_settings, url),
            )
            .await;
            let (conn, ldap) = match connected {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    failures.push(format!("{url}: {}", describe(&e)));
                    continue;
                }
                Err(_) => {
                    failures.push(format!(
                        "{url}: no answer within {} s",
                        settings.connect_timeout.as_secs()
                    ));
                    continue;
                }
            };
            tokio::spawn(async move {
                if let Err(e) = conn.drive().await {
                    tracing::debug!(error = %e, "LDAP connection closed");
                }
            });
            let mut client = LdapClient {
                ldap,
                url: url.clone(),
                settings: settings.clone(),
            };
            match client.bind().await {
                Ok(()) => return Ok(client),
                Err(LdapError::Operation { reason, .. }) => {
                    failures.push(format!("{url}: {reason}"));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(LdapError::Unreachable(failures.join("; ")))
    }

    /// The URL of the server this client is connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn bind(&mut self) -> Result<(), LdapError> {
        let timeout = self.settings.operation_timeout;
        let (dn, result) = match &self.settings.bind {
            Bind::Anonymous => return Ok(()),
            Bind::Simple { dn, password } => (
                dn.clone(),
                self.ldap
                    .with_timeout(timeout)
                    .simple_bind(dn, password)
                    .await,
            ),
            Bind::SaslExternal => (
                "SASL EXTERNAL (client certificate)".to_owned(),
                self.ldap.with_timeout(timeout).sasl_external_bind().await,
            ),
        };
        let result = result.map_err(|e| operation_error("bind", describe(&e)))?;
        if result.rc == 0 {
            return Ok(());
        }
        let reason = match result.rc {
            49 => "invalid credentials (wrong DN or password)".to_owned(),
            rc => format!("result code {rc} {}", result.text),
        };
        Err(LdapError::BindRefused {
            url: self.url.clone(),
            dn,
            reason,
        })
    }

    /// Reads the root DSE.
    pub async fn root_dse(&mut self) -> Result<RootDse, LdapError> {
        let attrs = [
            "namingContexts",
            "supportedControl",
            "vendorName",
            "highestCommittedUSN",
        ];
        let entry = self.read("", &attrs).await?;
        let texts = |name: &str| -> Vec<String> {
            entry
                .iter()
                .flat_map(|e| e.values(name))
                .filter_map(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
                .collect()
        };
        Ok(RootDse {
            naming_contexts: texts("namingContexts"),
            supported_controls: texts("supportedControl").into_iter().collect(),
            vendor_name: texts("vendorName").into_iter().next(),
            highest_committed_usn: texts("highestCommittedUSN")
                .first()
                .and_then(|v| v.parse().ok()),
        })
    }

    /// Reads one entry; `None` when it does not exist.
    pub async fn read(
        &mut self,
        dn: &str,
        attributes: &[&str],
    ) -> Result<Option<RawEntry>, LdapError> {
        let mut found = None;
        let result = self
            .search(dn, Scope::Base, "(objectClass=*)", attributes, false, |e| {
                found = Some(e)
            })
            .await;
        match result {
            Ok(()) => Ok(found),
            Err(LdapError::NoSuchObject { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entry at `dn` when it matches `filter` (a base search); `None` when it does not
    /// exist or does not match.
    pub async fn read_matching(
        &mut self,
        dn: &str,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Option<RawEntry>, LdapError> {
        let mut found = None;
        match self
            .search(dn, Scope::Base, filter, attributes, false, |e| {
                found = Some(e)
            })
            .await
        {
            Ok(()) => Ok(found),
            Err(LdapError::NoSuchObject { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Up to `limit` entries of the subtree below `base` (a size limit, not paging).
    pub async fn sample(
        &mut self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        limit: u32,
    ) -> Result<Vec<RawEntry>, LdapError> {
        let operation = || format!("search of {base} for {filter}");
        let attrs: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let mut stream = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .with_search_options(SearchOptions::new().sizelimit(limit))
            .streaming_search(base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| operation_error(operation(), describe(&e)))?;
        let mut found = Vec::new();
        let result = drain(&mut stream, |e| found.push(e), &operation).await?;
        // Size limit exceeded is the expected end of a sample.
        if result.rc != 4 {
            check_result(result.rc, &result.text, &result.matched, base, operation)?;
        }
        Ok(found)
    }

    /// Searches the subtree below `base`, page by page, and hands every entry to `each`.
    pub async fn search_subtree(
        &mut self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        each: impl FnMut(RawEntry),
    ) -> Result<(), LdapError> {
        self.search(base, Scope::Subtree, filter, attributes, true, each)
            .await
    }

    /// A paged subtree search, read with [`LdapClient::next_page`].
    pub fn paged_search(base: &str, filter: &str, attributes: &[&str]) -> PagedSearch {
        PagedSearch {
            base: base.to_owned(),
            filter: filter.to_owned(),
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
            cookie: Some(Vec::new()),
            ranged: Vec::new(),
        }
    }

    /// A subtree search that sees Active Directory's deleted entries (tombstones, in the
    /// naming context's Deleted Objects container) with the show-deleted control. Servers that
    /// do not know the control refuse it (it is critical).
    pub async fn search_deleted(
        &mut self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        each: impl FnMut(RawEntry),
    ) -> Result<(), LdapError> {
        let show_deleted = RawControl {
            ctype: SHOW_DELETED_OID.to_owned(),
            crit: true,
            val: None,
        };
        let paging = Paging {
            extra: vec![show_deleted],
        };
        self.search_raw(
            base,
            Scope::Subtree,
            filter,
            attributes,
            Some(&paging),
            each,
        )
        .await
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        paged: bool,
        mut each: impl FnMut(RawEntry),
    ) -> Result<(), LdapError> {
        let mut ranged = Vec::new();
        let paging = Paging { extra: Vec::new() };
        let paging = paged.then_some(&paging);
        self.search_raw(base, scope, filter, attributes, paging, |record| {
            if has_ranged_values(&record) {
                ranged.push(record);
            } else {
                each(record);
            }
        })
        .await?;
        // Range retrieval needs further searches, made once the stream is done.
        for record in ranged {
            let record = self.complete_ranges(record).await?;
            each(record);
        }
        Ok(())
    }

    /// A search that hands over entries as the server sent them; with `paging`, page by page
    /// (RFC 2696), the paging driven here so that a malformed control from the server is an
    /// error, not a panic.
    async fn search_raw(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        paging: Option<&Paging>,
        mut each: impl FnMut(RawEntry),
    ) -> Result<(), LdapError> {
        let mut cookie: Vec<u8> = Vec::new();
        loop {
            let search = OneSearch {
                base,
                scope,
                filter,
                attributes,
            };
            let next = self.search_page(&search, paging, cookie, &mut each).await?;
            match next {
                Some(next) => cookie = next,
                None => return Ok(()),
            }
        }
    }

    /// One search request: the whole search without `paging`, one page of it with (from
    /// `cookie`, empty for the first). Returns the cookie of the next page, `None` at the end.
    async fn search_page(
        &mut self,
        search: &OneSearch<'_>,
        paging: Option<&Paging>,
        cookie: Vec<u8>,
        each: impl FnMut(RawEntry),
    ) -> Result<Option<Vec<u8>>, LdapError> {
        let OneSearch {
            base,
            scope,
            filter,
            attributes,
        } = *search;
        let operation = || format!("search of {base} for {filter}");
        let attrs: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let mut ldap = self.ldap.clone();
        ldap.with_timeout(self.settings.operation_timeout);
        if let Some(paging) = paging {
            let mut controls: Vec<RawControl> = vec![
                ldap3::controls::PagedResults {
                    size: self.page_size(),
                    cookie,
                }
                .into(),
            ];
            controls.extend(paging.extra.iter().cloned());
            ldap.with_controls(controls);
        }
        let mut stream = ldap
            .streaming_search(base, scope, filter, attrs)
            .await
            .map_err(|e| operation_error(operation(), describe(&e)))?;
        let result = drain(&mut stream, each, &operation).await?;
        check_result(result.rc, &result.text, &result.matched, base, operation)?;
        if paging.is_none() {
            return Ok(None);
        }
        // The server's paged-results control carries the cookie of the next page; an empty
        // cookie (or no control: a server that does not page) ends the search.
        let next = result
            .ctrls
            .iter()
            .find(|Control(_, raw)| raw.ctype == PAGED_RESULTS_OID)
            .map(|Control(_, raw)| {
                raw.val
                    .as_deref()
                    .and_then(parse_paged_results_cookie)
                    .ok_or_else(|| {
                        operation_error(
                            operation(),
                            "the server sent a malformed paged-results control",
                        )
                    })
            })
            .transpose()?;
        Ok(next.filter(|next| !next.is_empty()))
    }

    /// The next page of a paged subtree search, `None` once it is done: the caller works on a
    /// page before the next is asked for, so that a read of a million entries holds one page
    /// at a time. Entries whose values come in ranges are completed once the search is done
    /// and come as its last page.
    pub async fn next_page(
        &mut self,
        search: &mut PagedSearch,
    ) -> Result<Option<Vec<RawEntry>>, LdapError> {
        let Some(cookie) = search.cookie.take() else {
            let ranged = std::mem::take(&mut search.ranged);
            let mut last = Vec::with_capacity(ranged.len());
            for record in ranged {
                last.push(self.complete_ranges(record).await?);
            }
            return Ok((!last.is_empty()).then_some(last));
        };
        let attributes: Vec<&str> = search.attributes.iter().map(String::as_str).collect();
        let one = OneSearch {
            base: &search.base,
            scope: Scope::Subtree,
            filter: &search.filter,
            attributes: &attributes,
        };
        let paging = Paging { extra: Vec::new() };
        let mut page = Vec::new();
        let ranged = &mut search.ranged;
        let next = self
            .search_page(&one, Some(&paging), cookie.clone(), |record| {
                if has_ranged_values(&record) {
                    ranged.push(record);
                } else {
                    page.push(record);
                }
            })
            .await;
        match next {
            Ok(next) => search.cookie = next,
            // The same page again, if asked: a failed page never looks like the last one.
            Err(e) => {
                search.cookie = Some(cookie);
                return Err(e);
            }
        }
        Ok(Some(page))
    }

    fn page_size(&self) -> i32 {
        i32::try_from(self.settings.page_size.max(1)).unwrap_or(i32::MAX)
    }

    /// Fetches the rest of every `attr;range=low-high` attribute (Active Directory sends at
    /// most 1,500 values of a multi-valued attribute at a time) and names it plainly.
    async fn complete_ranges(&mut self, mut record: RawEntry) -> Result<RawEntry, LdapError> {
        let mut pending: Vec<(String, u64)> = Vec::new();
        for attribute in &mut record.attributes {
            if let Some((name, range)) = split_range(&attribute.name) {
                if let Some(next) = range.next_start()
                    && !pending.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name))
                {
                    pending.push((name.clone(), next));
                }
                attribute.name = name;
            }
        }
        for (name, mut start) in pending {
            loop {
                let wanted = format!("{name};range={start}-*");
                let mut found = None;
                self.search_raw(
                    &record.dn,
                    Scope::Base,
                    "(objectClass=*)",
                    &[wanted.as_str()],
                    None,
                    |e| found = Some(e),
                )
                .await?;
                let Some(more) = found else { break };
                let mut next = None;
                let mut got_any = false;
                for attribute in more.attributes {
                    if let Some((base_name, range)) = split_range(&attribute.name)
                        && base_name.eq_ignore_ascii_case(&name)
                    {
                        got_any = true;
                        next = range.next_start();
                        record.attributes.push(RawAttribute {
                            name: base_name,
                            value: attribute.value,
                        });
                    }
                }
                match next {
                    Some(n) if got_any && n > start => start = n,
                    _ => break,
                }
            }
        }
        Ok(record)
    }

    /// An RFC 4533 refreshOnly search: with a cookie, only what changed since it; without,
    /// every entry. `attributes` should include the GUID attribute.
    pub async fn sync_refresh(
        &mut self,
        base: &str,
        filter: &str,
        attributes: &[&str],
        cookie: Option<Vec<u8>>,
    ) -> Result<SyncRefresh, LdapError> {
        self.refresh(base, Scope::Subtree, filter, attributes, cookie, true)
            .await
    }

    /// The cookie of a refreshOnly search without one, which names every entry and is not
    /// kept (no attributes asked for, none held): where a full read under content
    /// synchronization starts from, before it reads the entries by a paged search.
    pub async fn sync_cookie(
        &mut self,
        base: &str,
        filter: &str,
    ) -> Result<Option<Vec<u8>>, LdapError> {
        let refresh = self
            .refresh(base, Scope::Subtree, filter, &["1.1"], None, false)
            .await?;
        Ok(refresh.cookie)
    }

    /// [`LdapClient::sync_refresh`]; without `keep`, the entries are dropped as they come.
    async fn refresh(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        cookie: Option<Vec<u8>>,
        keep: bool,
    ) -> Result<SyncRefresh, LdapError> {
        let operation = || format!("content synchronization of {base} for {filter}");
        let mut control: RawControl = SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie: cookie.clone(),
            reload_hint: false,
        }
        .into();
        // Critical: a database without the sync provider must refuse, not answer a plain search.
        control.crit = true;
        let attrs: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let mut stream = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .with_controls(control)
            .streaming_search(base, scope, filter, attrs)
            .await
            .map_err(|e| operation_error(operation(), describe(&e)))?;
        // A refresh that finds nothing new may send no cookie: the old one stays good.
        let mut refresh = SyncRefresh {
            cookie,
            ..SyncRefresh::default()
        };
        let mut ranged = Vec::new();
        loop {
            // A refresh is not paged, and ldap3 queues what the server sends without bound: this
            // loop takes everything queued before it lets the connection read more (tokio's
            // budget would have it yield after 128), so the queue holds about one read of the
            // socket, not the directory, when the engine gets less CPU than the server.
            let next = tokio::task::unconstrained(stream.next()).await;
            let item = match next {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(e) => {
                    stream.finish().await;
                    return Err(operation_error(operation(), describe(&e)));
                }
            };
            if item.is_intermediate() {
                // A message skipped here could turn present entries into deleted ones.
                let Some(info) = parse_sync_info(&item) else {
                    stream.finish().await;
                    return Err(operation_error(
                        operation(),
                        "the server sent a malformed Sync Info message",
                    ));
                };
                apply_sync_info(&mut refresh, info);
                continue;
            }
            if item.is_ref() {
                continue;
            }
            let state = item.1.iter().find_map(|Control(kind, raw)| {
                matches!(kind, Some(ControlType::SyncState))
                    .then(|| raw.val.as_deref().and_then(parse_sync_state))
                    .flatten()
            });
            let Some(state) = state else {
                stream.finish().await;
                return Err(operation_error(
                    operation(),
                    "an entry came without a Sync State control: the server ignored the Sync \
                     Request (is the syncprov overlay on this database?)",
                ));
            };
            if let Some(cookie) = state.cookie {
                refresh.cookie = Some(cookie);
            }
            if !keep {
                continue;
            }
            let uuid = print_guid(&state.entry_uuid, GuidLayout::Rfc4122);
            match state.state {
                EntryState::Delete => refresh.deleted.push(uuid),
                EntryState::Present => refresh.present.push(uuid),
                EntryState::Add | EntryState::Modify => match parse_entry(&item) {
                    Some(record) if has_ranged_values(&record) => ranged.push(record),
                    Some(record) => refresh.changed.push(record),
                    None => tracing::warn!(base, "skipped an entry the server sent malformed"),
                },
            }
        }
        let result = stream.finish().await;
        if result.rc == SYNC_REFRESH_REQUIRED {
            return Err(LdapError::SyncRefreshRequired(result.text));
        }
        check_result(result.rc, &result.text, &result.matched, base, operation)?;
        for Control(kind, raw) in &result.ctrls {
            if matches!(kind, Some(ControlType::SyncDone))
                && let Some(done) = raw.val.as_deref().and_then(parse_sync_done)
            {
                if done.cookie.is_some() {
                    refresh.cookie = done.cookie;
                }
                // refreshDeletes FALSE in syncDone means the present phase was used.
                if !done.refresh_deletes {
                    refresh.deletes_by_absence = true;
                }
            }
        }
        for record in ranged {
            let record = self.complete_ranges(record).await?;
            refresh.changed.push(record);
        }
        Ok(refresh)
    }

    /// Active Directory's DirSync: the objects of the naming context changed since the cookie
    /// (all of them without one), followed page after page until the server has no more.
    pub async fn dirsync(
        &mut self,
        naming_context: &str,
        filter: &str,
        attributes: &[&str],
        cookie: Option<Vec<u8>>,
    ) -> Result<DirSyncChanges, LdapError> {
        let operation = || format!("DirSync of {naming_context} for {filter}");
        let attrs: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let mut changes = DirSyncChanges {
            cookie: cookie.unwrap_or_default(),
            ..DirSyncChanges::default()
        };
        // Each request returns a bounded batch; "more results" asks for the next one.
        for _ in 0..10_000 {
            let control = dirsync_control(&changes.cookie);
            let mut stream = self
                .ldap
                .with_timeout(self.settings.operation_timeout)
                .with_controls(control)
                .streaming_search(naming_context, Scope::Subtree, filter, attrs.clone())
                .await
                .map_err(|e| operation_error(operation(), describe(&e)))?;
            let result = drain(&mut stream, |e| changes.changed.push(e), &operation).await?;
            check_result(
                result.rc,
                &result.text,
                &result.matched,
                naming_context,
                operation,
            )?;
            let response = result
                .ctrls
                .iter()
                .find(|Control(_, raw)| raw.ctype == DIRSYNC_CONTROL_OID)
                .and_then(|Control(_, raw)| raw.val.as_deref())
                .and_then(parse_dirsync_response)
                .ok_or_else(|| {
                    operation_error(operation(), "the server sent no DirSync response control")
                })?;
            changes.cookie = response.1;
            if !response.0 {
                return Ok(changes);
            }
        }
        Err(operation_error(operation(), "DirSync did not finish"))
    }

    /// Opens a live feed of the changes below `base` (no operation timeout: it waits for the
    /// server). It starts from the cookie of the base entry alone, which says "now": a feed
    /// without cookie would first list every entry below the base (seconds at a million, and
    /// the changes made meanwhile wait for the list's end). OpenLDAP's cookie is its
    /// contextCSN, whatever the search; a server whose cookie belongs to one search refuses it,
    /// and the feed starts without. Changes made before the feed opened are not reported: a
    /// caller reads them once it is open.
    pub async fn watch(mut self, base: &str) -> Result<ChangeFeed, LdapError> {
        let cookie = match self
            .refresh(base, Scope::Base, "(objectClass=*)", &["1.1"], None, false)
            .await
        {
            Ok(refresh) => refresh.cookie,
            Err(e) => {
                tracing::debug!(base, error = %e, "no cookie to start the change feed from");
                None
            }
        };
        self.watch_from(base, cookie).await
    }

    /// Opens a live feed of the changes below `base` made after `cookie`, reported as changes.
    /// Without a cookie, or where the server refuses it, the feed starts without one and
    /// skips what its refresh lists: every entry below the base.
    pub async fn watch_from(
        self,
        base: &str,
        cookie: Option<Vec<u8>>,
    ) -> Result<ChangeFeed, LdapError> {
        let LdapClient { mut ldap, .. } = self;
        let from_cookie = cookie.is_some();
        let stream = persist(&mut ldap, base, cookie).await?;
        Ok(ChangeFeed {
            stream,
            refreshed: false,
            from_cookie,
            ldap,
            base: base.to_owned(),
        })
    }

    /// Ends the session politely; errors do not matter any more at this point.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

/// The DirSync request control: flags LDAP_DIRSYNC_OBJECT_SECURITY (an account with read
/// rights suffices, no replication right needed), no byte limit, and the cookie.
fn dirsync_control(cookie: &[u8]) -> RawControl {
    use ldap3::asn1::{ASNTag, Integer, OctetString, Sequence, Tag, write};
    const OBJECT_SECURITY: i64 = 0x1;
    let value = Tag::Sequence(Sequence {
        inner: vec![
            Tag::Integer(Integer {
                inner: OBJECT_SECURITY,
                ..Default::default()
            }),
            Tag::Integer(Integer {
                inner: 0,
                ..Default::default()
            }),
            Tag::OctetString(OctetString {
                inner: cookie.to_vec(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    })
    .into_structure();
    let mut buf = bytes::BytesMut::with_capacity(cookie.len() + 16);
    // Encoding into a growable buffer does not fail.
    let _ = write::encode_into(&mut buf, value);
    RawControl {
        ctype: DIRSYNC_CONTROL_OID.to_owned(),
        crit: true,
        val: Some(buf.to_vec()),
    }
}

/// The DirSync response control: (more results, cookie).
fn parse_dirsync_response(value: &[u8]) -> Option<(bool, Vec<u8>)> {
    let (_, tag) = ldap3::asn1::parse_tag(value).ok()?;
    let PL::C(parts) = tag.payload else {
        return None;
    };
    let more = match &parts.first()?.payload {
        PL::P(bytes) => bytes.iter().any(|b| *b != 0),
        PL::C(_) => return None,
    };
    let cookie = match &parts.get(2)?.payload {
        PL::P(bytes) => bytes.clone(),
        PL::C(_) => return None,
    };
    Some((more, cookie))
}

/// One search request's base, scope, filter and attributes.
#[derive(Clone, Copy)]
struct OneSearch<'a> {
    base: &'a str,
    scope: Scope,
    filter: &'a str,
    attributes: &'a [&'a str],
}

/// A paged subtree search read a page at a time ([`LdapClient::next_page`]).
#[derive(Debug)]
pub struct PagedSearch {
    base: String,
    filter: String,
    attributes: Vec<String>,
    /// The cookie of the next page (empty for the first); `None` once the server has sent
    /// the last page.
    cookie: Option<Vec<u8>>,
    /// Entries whose values come in ranges, completed at the end.
    ranged: Vec<RawEntry>,
}

/// Reads a search to its end, handing each entry to `each`, and returns the final result.
async fn drain<'a, S, A>(
    stream: &mut ldap3::SearchStream<'a, S, A>,
    mut each: impl FnMut(RawEntry),
    operation: &(dyn Fn() -> String + Sync),
) -> Result<ldap3::LdapResult, LdapError>
where
    S: AsRef<str> + Send + Sync + 'a,
    A: AsRef<[S]> + Send + Sync + 'a,
{
    loop {
        match stream.next().await {
            Ok(Some(entry)) if entry.is_ref() || entry.is_intermediate() => {}
            Ok(Some(entry)) => match parse_entry(&entry) {
                Some(record) => each(record),
                None => tracing::warn!(
                    operation = operation(),
                    "skipped an entry the server sent malformed"
                ),
            },
            Ok(None) => return Ok(stream.finish().await),
            Err(e) => {
                stream.finish().await;
                return Err(operation_error(operation(), describe(&e)));
            }
        }
    }
}

// RFC 4533 messages, parsed without panicking on what a server sends (ldap3's own parsers
// panic on malformed input).

const BER_BOOLEAN: u64 = 1;
const BER_OCTET_STRING: u64 = 4;
const BER_ENUMERATED: u64 = 10;

fn ber(bytes: &[u8]) -> Option<StructureTag> {
    ldap3::asn1::parse_tag(bytes).ok().map(|(_, tag)| tag)
}

fn primitive(tag: &StructureTag) -> Option<&[u8]> {
    match &tag.payload {
        PL::P(bytes) => Some(bytes),
        PL::C(_) => None,
    }
}

fn constructed(tag: &StructureTag) -> Option<&[StructureTag]> {
    match &tag.payload {
        PL::C(parts) => Some(parts),
        PL::P(_) => None,
    }
}

fn is_universal(tag: &StructureTag, id: u64) -> bool {
    tag.class == ldap3::asn1::TagClass::Universal && tag.id == id
}

fn boolean(tag: &StructureTag) -> Option<bool> {
    primitive(tag).map(|bytes| bytes.iter().any(|b| *b != 0))
}

/// realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }: the cookie.
fn parse_paged_results_cookie(value: &[u8]) -> Option<Vec<u8>> {
    let tag = ber(value)?;
    let parts = constructed(&tag)?;
    let cookie = parts.get(1).filter(|t| is_universal(t, BER_OCTET_STRING))?;
    primitive(cookie).map(<[u8]>::to_vec)
}

/// syncStateValue ::= SEQUENCE { state ENUMERATED, entryUUID OCTET STRING, cookie OPTIONAL }
fn parse_sync_state(value: &[u8]) -> Option<SyncState> {
    let tag = ber(value)?;
    let parts = constructed(&tag)?;
    let state_tag = parts.first().filter(|t| is_universal(t, BER_ENUMERATED))?;
    let state = match primitive(state_tag)? {
        [0] => EntryState::Present,
        [1] => EntryState::Add,
        [2] => EntryState::Modify,
        [3] => EntryState::Delete,
        _ => return None,
    };
    let entry_uuid = primitive(parts.get(1)?)?.to_vec();
    let cookie = parts.get(2).and_then(primitive).map(<[u8]>::to_vec);
    Some(SyncState {
        state,
        entry_uuid,
        cookie,
    })
}

/// syncDoneValue ::= SEQUENCE { cookie OPTIONAL, refreshDeletes BOOLEAN DEFAULT FALSE }
fn parse_sync_done(value: &[u8]) -> Option<SyncDone> {
    let tag = ber(value)?;
    let mut done = SyncDone {
        cookie: None,
        refresh_deletes: false,
    };
    for part in constructed(&tag)? {
        if is_universal(part, BER_OCTET_STRING) {
            done.cookie = primitive(part).map(<[u8]>::to_vec);
        } else if is_universal(part, BER_BOOLEAN) {
            done.refresh_deletes = boolean(part)?;
        }
    }
    Some(done)
}

/// The syncInfoValue of an Intermediate Response (RFC 4533 §2.5).
fn parse_sync_info(entry: &ResultEntry) -> Option<SyncInfo> {
    let response = constructed(&entry.0)?;
    let value = response
        .iter()
        .find(|t| t.class == ldap3::asn1::TagClass::Context && t.id == 1)?;
    let info = ber(primitive(value)?)?;
    if info.class != ldap3::asn1::TagClass::Context {
        return None;
    }
    if info.id == 0 {
        return Some(SyncInfo::NewCookie(primitive(&info)?.to_vec()));
    }
    let parts = constructed(&info)?;
    let cookie = parts
        .iter()
        .find(|t| is_universal(t, BER_OCTET_STRING))
        .and_then(primitive)
        .map(<[u8]>::to_vec);
    let flag = parts
        .iter()
        .find(|t| is_universal(t, BER_BOOLEAN))
        .and_then(boolean);
    match info.id {
        1 => Some(SyncInfo::RefreshDelete {
            cookie,
            refresh_done: flag.unwrap_or(true),
        }),
        2 => Some(SyncInfo::RefreshPresent {
            cookie,
            refresh_done: flag.unwrap_or(true),
        }),
        3 => {
            let uuids = parts
                .iter()
                .find(|t| is_universal(t, 17))
                .and_then(constructed)
                .unwrap_or_default()
                .iter()
                .filter_map(primitive)
                .map(<[u8]>::to_vec)
                .collect();
            Some(SyncInfo::SyncIdSet {
                cookie,
                refresh_deletes: flag.unwrap_or(false),
                sync_uuids: uuids,
            })
        }
        _ => None,
    }
}

fn apply_sync_info(refresh: &mut SyncRefresh, info: SyncInfo) {
    match info {
        SyncInfo::NewCookie(cookie) => refresh.cookie = Some(cookie),
        SyncInfo::RefreshDelete { cookie, .. } => {
            if cookie.is_some() {
                refresh.cookie = cookie;
            }
        }
        SyncInfo::RefreshPresent { cookie, .. } => {
            refresh.deletes_by_absence = true;
            if cookie.is_some() {
                refresh.cookie = cookie;
            }
        }
        SyncInfo::SyncIdSet {
            cookie,
            refresh_deletes,
            sync_uuids,
        } => {
            let uuids = sync_uuids
                .iter()
                .map(|u| print_guid(u, GuidLayout::Rfc4122));
            if refresh_deletes {
                refresh.deleted.extend(uuids);
            } else {
                refresh.present.extend(uuids);
            }
            if cookie.is_some() {
                refresh.cookie = cookie;
            }
        }
    }
}

fn check_result(
    rc: u32,
    text: &str,
    matched: &str,
    base: &str,
    operation: impl Fn() -> String,
) -> Result<(), LdapError> {
    match rc {
        0 => Ok(()),
        32 => Err(LdapError::NoSuchObject {
            dn: base.to_owned(),
        }),
        4 => Err(operation_error(
            operation(),
            "size limit exceeded: the server caps how many entries this account may read \
             (raise the account's size limit, e.g. OpenLDAP `limits ... size=unlimited`)",
        )),
        50 => Err(operation_error(
            operation(),
            "insufficient access rights for the bind account",
        )),
        rc => {
            let matched = if matched.is_empty() {
                String::new()
            } else {
                format!(" (matched {matched})")
            };
            Err(operation_error(
                operation(),
                format!("result code {rc}: {text}{matched}"),
            ))
        }
    }
}

/// An LDAP error in words an operator can act on.
fn describe(error: &ldap3::LdapError) -> String {
    match error {
        ldap3::LdapError::Io { source } => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
            std::io::ErrorKind::TimedOut => "timed out".into(),
            _ => source.to_string(),
        },
        ldap3::LdapError::Timeout { .. } => "the server did not answer in time".into(),
        other => other.to_string(),
    }
}

fn tls_config(settings: &ClientSettings) -> Result<Option<Arc<rustls::ClientConfig>>, LdapError> {
    if settings.ca_certificate_pem.is_none() && settings.client_certificate_pem.is_none() {
        // ldap3's default: the system's trusted certificates.
        return Ok(None);
    }
    let tls = |e: &dyn std::fmt::Display| LdapError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_certificate_pem {
        Some(pem) => {
            let mut count = 0;
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate.map_err(|e| tls(&format!("CA certificate: {e}")))?;
                roots
                    .add(certificate)
                    .map_err(|e| tls(&format!("CA certificate: {e}")))?;
                count += 1;
            }
            if count == 0 {
                return Err(tls(&"the CA certificate file holds no PEM certificate"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for certificate in native.certs {
                let _ = roots.add(certificate);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_root_certificates(roots);
    let config = match (&settings.client_certificate_pem, &settings.client_key_pem) {
        (Some(certificate), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certificate)
                .collect::<Result<_, _>>()
                .map_err(|e| tls(&format!("client certificate: {e}")))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| tls(&format!("client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls(&format!("client certificate: {e}")))?
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(tls(
                &"a client certificate needs both the certificate and its key",
            ));
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

/// Reads a SearchResultEntry without panicking on malformed input.
fn parse_entry(entry: &ResultEntry) -> Option<RawEntry> {
    let tag = &entry.0;
    if tag.id != 4 {
        return None;
    }
    let PL::C(parts) = &tag.payload else {
        return None;
    };
    let dn = primitive_text(parts.first()?)?;
    let PL::C(attributes) = &parts.get(1)?.payload else {
        return None;
    };
    let mut record = RawEntry {
        dn,
        line: 0,
        attributes: Vec::new(),
    };
    for attribute in attributes {
        let PL::C(pair) = &attribute.payload else {
            return None;
        };
        let name = primitive_text(pair.first()?)?;
        let PL::C(values) = &pair.get(1)?.payload else {
            return None;
        };
        for value in values {
            let PL::P(bytes) = &value.payload else {
                return None;
            };
            record.attributes.push(RawAttribute {
                name: name.clone(),
                value: bytes.clone(),
            });
        }
    }
    Some(record)
}

fn primitive_text(tag: &StructureTag) -> Option<String> {
    match &tag.payload {
        PL::P(bytes) => String::from_utf8(bytes.clone()).ok(),
        PL::C(_) => None,
    }
}

/// A range of values of `attr;range=low-high` (`high` is `*` on the last part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ValueRange {
    high: Option<u64>,
}

impl ValueRange {
    fn next_start(self) -> Option<u64> {
        self.high.map(|h| h + 1)
    }
}

fn split_range(name: &str) -> Option<(String, ValueRange)> {
    let lower = name.to_ascii_lowercase();
    let at = lower.find(";range=")?;
    let range = &name[at + ";range=".len()..];
    let (_, high) = range.split_once('-')?;
    let high = if high == "*" {
        None
    } else {
        Some(high.parse().ok()?)
    };
    Some((name[..at].to_owned(), ValueRange { high }))
}

fn has_ranged_values(record: &RawEntry) -> bool {
    record
        .attributes
        .iter()
        .any(|a| a.name.to_ascii_lowercase().contains(";range="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_options_are_split_off_the_attribute_name() {
        let (name, range) = split_range("member;range=0-1499").unwrap();
        assert_eq!(name, "member");
        assert_eq!(range.next_start(), Some(1500));
        let (name, range) = split_range("Member;Range=1500-*").unwrap();
        assert_eq!(name, "Member");
        assert_eq!(range.next_start(), None);
        assert!(split_range("member").is_none());
    }

    #[test]
    fn dirsync_control_carries_the_cookie() {
        let control = dirsync_control(b"cookie-bytes");
        assert_eq!(control.ctype, DIRSYNC_CONTROL_OID);
        assert!(control.crit);
        // The response has the request's shape: (flag, size, cookie).
        let (flag, cookie) = parse_dirsync_response(&control.val.unwrap()).unwrap();
        assert!(flag);
        assert_eq!(cookie, b"cookie-bytes");
        assert!(parse_dirsync_response(b"garbage").is_none());
    }

    fn encode(tag: ldap3::asn1::Tag) -> Vec<u8> {
        use ldap3::asn1::{ASNTag, write};
        let mut buf = bytes::BytesMut::new();
        write::encode_into(&mut buf, tag.into_structure()).unwrap();
        buf.to_vec()
    }

    #[test]
    fn sync_messages_parse_and_garbage_does_not_panic() {
        use ldap3::asn1::{Boolean, Enumerated, OctetString, Sequence, Tag};
        let octets = |b: &[u8]| {
            Tag::OctetString(OctetString {
                inner: b.to_vec(),
                ..Default::default()
            })
        };
        let state = encode(Tag::Sequence(Sequence {
            inner: vec![
                Tag::Enumerated(Enumerated {
                    inner: 3,
                    ..Default::default()
                }),
                octets(&[1; 16]),
                octets(b"c1"),
            ],
            ..Default::default()
        }));
        let parsed = parse_sync_state(&state).unwrap();
        assert!(matches!(parsed.state, EntryState::Delete));
        assert_eq!(parsed.entry_uuid, [1; 16]);
        assert_eq!(parsed.cookie.as_deref(), Some(&b"c1"[..]));
        let done = encode(Tag::Sequence(Sequence {
            inner: vec![
                octets(b"c2"),
                Tag::Boolean(Boolean {
                    inner: true,
                    ..Default::default()
                }),
            ],
            ..Default::default()
        }));
        let parsed = parse_sync_done(&done).unwrap();
        assert_eq!(
            (parsed.cookie.as_deref(), parsed.refresh_deletes),
            (Some(&b"c2"[..]), true)
        );
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x0a\x01\x09",
            b"\xff\xff\xff",
            &state[..3],
        ] {
            assert!(parse_sync_state(garbage).is_none());
            let _ = parse_sync_done(garbage);
        }
    }
}
