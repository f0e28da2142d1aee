//! `plan` of a full read, streamed: each page's new users are mapped and planned as the read
//! gives them and handed to a [`PlanStream`] (the command prints them), so that the plan of a
//! first cycle holds a page of images, not the directory's. What a cycle would decide is
//! decided the same way: a user whose userName a record holds is left to the plan, as in a
//! cycle; one whose userName an earlier user of the read took fails alone, naming that user's
//! entry, and so do a create or a rename left to the plan that wants it
//! (`refuse_names_taken_as_read`), as the cycle's plan would once the first user is created.
//! The changed users' updates that a cycle applies as it reads are streamed too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use scimbridge_model::{
    Channel, ChannelKey, EffectiveSourceSettings, EntryGuid, Operation, PlannedGroupOperation,
    PlannedOperation, ProvisioningOptions,
};

use super::CycleError;
use super::as_read::names_held_by_records;
use super::full_read::{AsRead, updates_as_read};
use super::plan::map_candidate;
use crate::detect::Fingerprinted;
use crate::plan::guid_set::hash64;
use crate::plan::{plan_users, refuse_user_name_of};
use crate::source::{SourceGroup, normalize_dn};
use crate::state::Store;

/// Takes the operations of a streamed plan as they are planned: the creates (and the failures)
/// of each page of new users of a full read, and the updates and refreshes of its changed users
/// that a cycle applies as it reads (refreshes, which send nothing, are only counted); then,
/// when the full read's groups are planned a batch at a time, the rest of the user operations
/// and the groups' operations. The plan returned holds the rest.
pub trait PlanStream: Send + Sync {
    fn operations(&self, operations: Vec<PlannedOperation>);

    /// A batch of groups' operations, and those of them the mass-change guard holds.
    fn groups(&self, operations: Vec<PlannedGroupOperation>, held: Vec<PlannedGroupOperation>);
}

/// Plans the new users of a full read page by page for `plan` (see the module).
pub(super) struct PlannedAsRead<'a> {
    store: &'a dyn Store,
    key: &'a ChannelKey,
    channel: &'a Channel,
    options: &'a ProvisioningOptions,
    settings: EffectiveSourceSettings,
    stream: &'a dyn PlanStream,
    claimed: Mutex<Claims>,
    /// The (DN, GUID) of every user streamed, when the channel provisions groups: they have no
    /// record, and the groups' members resolve to them.
    members: Mutex<Vec<(String, EntryGuid)>>,
    /// Changed users found unchanged after all: counted, not streamed.
    refreshed: AtomicU64,
}

/// The userNames the creates streamed so far take, with the DN of the entry that took each:
/// 64-bit hashes of the lower-cased names, the DNs in one string (about 70 bytes a user at a
/// million, where a user's image is kilobytes). Two names sharing a hash would show the second
/// user failing in the plan, never in a cycle.
#[derive(Default)]
struct Claims {
    by_name: HashMap<u64, (usize, usize)>,
    dns: String,
}

impl Claims {
    /// The DN of the entry that took `name` (lower-cased) first, or `None` after taking it for
    /// `dn`.
    fn claim(&mut self, name: &str, dn: &str) -> Option<&str> {
        let hash = hash64(name);
        if !self.by_name.contains_key(&hash) {
            let start = self.dns.len();
            self.dns.push_str(dn);
            self.by_name.insert(hash, (start, self.dns.len()));
            return None;
        }
        self.holder(name)
    }

    /// The DN of the entry that took `name` (lower-cased).
    fn holder(&self, name: &str) -> Option<&str> {
        let &(start, end) = self.by_name.get(&hash64(name))?;
        self.dns.get(start..end)
    }
}

impl<'a> PlannedAsRead<'a> {
    pub(super) fn new(
        store: &'a dyn Store,
        key: &'a ChannelKey,
        channel: &'a Channel,
        options: &'a ProvisioningOptions,
        settings: EffectiveSourceSettings,
        stream: &'a dyn PlanStream,
    ) -> PlannedAsRead<'a> {
        PlannedAsRead {
            store,
            key,
            channel,
            options,
            settings,
            stream,
            claimed: Mutex::default(),
            members: Mutex::default(),
            refreshed: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl AsRead for PlannedAsRead<'_> {
    async fn groups(&self, _groups: &[SourceGroup]) -> Result<(), CycleError> {
        Ok(())
    }

    async fn create(
        &self,
        new_users: Vec<Fingerprinted>,
    ) -> Result<Vec<Fingerprinted>, CycleError> {
        let no_records = HashMap::new();
        let candidates = new_users
            .iter()
            .map(|user| map_candidate(user.clone(), self.channel, &self.settings, &no_records))
            .collect();
        let plan = plan_users(candidates, Vec::new(), &no_records, self.options, 0);
        let held = names_held_by_records(self.store, self.key, &plan.operations).await?;
        let mut streamed = Vec::with_capacity(plan.operations.len());
        let mut left = HashSet::new();
        {
            let mut claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
            for mut op in plan.operations {
                if let (Operation::Create { .. }, Some(name)) = (&op.operation, &op.user_name) {
                    let name = name.to_lowercase();
                    if held.contains(&name) {
                        // The plan decides between a record and this user, as a cycle's does.
                        left.insert(op.guid);
                        continue;
                    }
                    if let Some(holder) = claimed.claim(&name, &op.dn) {
                        let holder = holder.to_owned();
                        refuse_user_name_of(&mut op, &holder);
                    }
                }
                streamed.push(op);
            }
        }
        if self.channel.source_location.group_base_dn.is_some() {
            self.members
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(streamed.iter().map(|op| (op.dn.clone(), op.guid.clone())));
        }
        if !streamed.is_empty() {
            self.stream.operations(streamed);
        }
        Ok(new_users
            .into_iter()
            .filter(|user| left.contains(&user.entry.guid))
            .collect())
    }

    /// Streams the changed users' updates a cycle would apply as it reads (as long as the
    /// user keeps its DN: the groups of `plan` find their members by the DN of the records).
    async fn update(&self, changed: Vec<Fingerprinted>) -> Result<Vec<Fingerprinted>, CycleError> {
        let mut updates = updates_as_read(
            self.store,
            self.key,
            self.channel,
            &self.settings,
            self.options,
            &changed,
        )
        .await?;
        let dns: HashMap<&EntryGuid, &str> = changed
            .iter()
            .map(|user| (&user.entry.guid, user.entry.dn.as_str()))
            .collect();
        let moved: HashSet<&EntryGuid> = updates
            .records
            .iter()
            .filter(|record| {
                dns.get(&record.guid)
                    .is_some_and(|dn| normalize_dn(dn) != normalize_dn(&record.dn))
            })
            .map(|record| &record.guid)
            .collect();
        let mut streamed = Vec::with_capacity(updates.operations.len());
        for op in updates.operations {
            if moved.contains(&op.guid) {
                updates.left.insert(op.guid);
            } else if op.operation == Operation::Refresh {
                // Counted, not shown: a refresh sends nothing.
                self.refreshed.fetch_add(1, Ordering::Relaxed);
            } else {
                streamed.push(op);
            }
        }
        if !streamed.is_empty() {
            self.stream.operations(streamed);
        }
        Ok(changed
            .into_iter()
            .filter(|user| updates.left.contains(&user.entry.guid))
            .collect())
    }

    async fn finish(&self) -> Result<(), CycleError> {
        Ok(())
    }

    fn created(&self) -> u64 {
        0
    }

    fn refreshed(&self) -> u64 {
        self.refreshed.load(Ordering::Relaxed)
    }

    fn unsaved_users(&self) -> Vec<(String, EntryGuid)> {
        std::mem::take(&mut *self.members.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn name_taken_by(&self, name: &str) -> Option<String> {
        let claimed = self.claimed.lock().unwrap_or_else(PoisonError::into_inner);
        claimed.holder(name).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first entry to take a userName keeps it, whatever its case; later ones learn its DN.
    #[test]
    fn claims_name_the_entry_that_took_a_user_name_first() {
        let mut claims = Claims::default();
        assert_eq!(claims.claim("ann", "uid=ann,ou=people"), None);
        assert_eq!(claims.claim("bob", "uid=bob,ou=people"), None);
        assert_eq!(
            claims.claim("ann", "uid=ann2,ou=people"),
            Some("uid=ann,ou=people")
        );
        assert_eq!(
            claims.claim("bob", "uid=bob2,ou=people"),
            Some("uid=bob,ou=people")
        );
        assert_eq!(claims.claim("cara", "uid=cara,ou=people"), None);
        assert_eq!(claims.holder("cara"), Some("uid=cara,ou=people"));
        assert_eq!(claims.holder("dan"), None);
    }
}
