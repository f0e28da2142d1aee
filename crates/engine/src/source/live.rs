//! Live feeds: how a channel learns between its scheduled cycles that its data store changed,
//! so that a change reaches the target within seconds.

use std::path::PathBuf;
use std::time::Duration;

use scimbridge_ldap::LdapClient;

use super::SourceError;
use super::ldif::{FileStamp, file_stamp};

/// How a channel learns of directory changes between its scheduled cycles.
pub enum LiveFeed {
    /// An LDIF file: its size, modification time and identity, looked at every `interval`
    /// (a `stat`, nothing read). The cycle then reads the file once it has settled.
    FileWatch {
        path: PathBuf,
        last: Option<FileStamp>,
        interval: Duration,
    },
    /// RFC 4533 refreshAndPersist: the server pushes each change as it happens.
    Persist {
        feed: scimbridge_ldap::client::ChangeFeed,
        data_store: String,
    },
    /// Active Directory pushes nothing without DirSync notifications: its root DSE's
    /// `highestCommittedUSN`, one small read every `interval`, grows with every change.
    UsnPoll {
        client: LdapClient,
        data_store: String,
        last: u64,
        interval: Duration,
    },
}

impl LiveFeed {
    /// For the service's log: how changes are followed.
    pub fn describe(&self) -> String {
        match self {
            LiveFeed::FileWatch { path, interval, .. } => format!(
                "watching {} for changes every {} s",
                path.display(),
                interval.as_secs_f64()
            ),
            LiveFeed::Persist { feed, .. } if feed.started_from_cookie() => {
                "following the directory's live change feed".into()
            }
            LiveFeed::Persist { .. } => "following the directory's live change feed (without a \
                 cookie to start from: it lists every entry first, and changes wait for the list)"
                .into(),
            LiveFeed::UsnPoll { interval, .. } => format!(
                "watching the directory's highestCommittedUSN every {} s",
                interval.as_secs_f64()
            ),
        }
    }

    /// Waits for the next change; `Ok(false)` when the server ended the feed.
    pub async fn next_change(&mut self) -> Result<bool, SourceError> {
        match self {
            LiveFeed::FileWatch {
                path,
                last,
                interval,
            } => loop {
                tokio::time::sleep(*interval).await;
                let now = file_stamp(path);
                if now != *last {
                    *last = now;
                    return Ok(true);
                }
            },
            LiveFeed::Persist { feed, data_store } => {
                feed.next_change()
                    .await
                    .map_err(|e| SourceError::Unreadable {
                        data_store: data_store.clone(),
                        reason: e.to_string(),
                    })
            }
            LiveFeed::UsnPoll {
                client,
                data_store,
                last,
                interval,
            } => loop {
                tokio::time::sleep(*interval).await;
                let dse = client
                    .root_dse()
                    .await
                    .map_err(|e| SourceError::Unreadable {
                        data_store: data_store.clone(),
                        reason: e.to_string(),
                    })?;
                let Some(usn) = dse.highest_committed_usn else {
                    return Ok(false);
                };
                if usn != *last {
                    *last = usn;
                    return Ok(true);
                }
            },
        }
    }
}
