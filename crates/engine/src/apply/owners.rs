//! A target user belongs to one record of a channel. Linking a user found in the target to a
//! second entry would let the two entries overwrite each other, and the first of them to leave
//! would deprovision the other's account: so a look-up that finds a user another entry owns
//! fails the operation instead. The one exception is a user who left and was disabled: its
//! account passes to the new entry that takes its name (a rehire), and the old record goes.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use scimbridge_model::{ChannelKey, EntryGuid, Record, TargetId};

use super::ScimClientError;
use crate::state::{RecordKey, Store};

/// Which entry a target user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub guid: EntryGuid,
    pub dn: String,
    /// The entry left the source location and its user was disabled: the account may pass to
    /// another entry.
    pub released: bool,
}

/// Target id → the entry whose user it is, for one cycle: the records' links, and the users
/// the cycle creates or links as it goes. A cycle that read its records by key looks up the
/// owner of a target user it does not know in the state store.
#[derive(Default)]
pub struct Owners<'a> {
    by_target: Mutex<HashMap<TargetId, Link>>,
    /// Target ids the store was asked about and no record holds (users a Bulk request just
    /// created): claimed without asking again. Only this cycle writes the channel's records,
    /// and what it claims goes in `by_target` first.
    free: Mutex<HashSet<TargetId>>,
    lookup: Option<(&'a dyn Store, &'a ChannelKey)>,
}

impl<'a> Owners<'a> {
    pub fn from_records<'r>(records: impl IntoIterator<Item = &'r Record>) -> Owners<'a> {
        Owners::new(links(records))
    }

    /// Every record's link is in `links`.
    pub fn new(links: HashMap<TargetId, Link>) -> Owners<'a> {
        Owners {
            by_target: Mutex::new(links),
            free: Mutex::default(),
            lookup: None,
        }
    }

    /// `links` holds some records' links; the channel's other records are in `store`.
    pub fn with_lookup(
        links: HashMap<TargetId, Link>,
        store: &'a dyn Store,
        channel: &'a ChannelKey,
    ) -> Owners<'a> {
        Owners {
            by_target: Mutex::new(links),
            free: Mutex::default(),
            lookup: Some((store, channel)),
        }
    }

    /// Reads the owner of `target_id` from the store when it is not known yet.
    async fn look_up(&self, target_id: &str) -> Result<(), ScimClientError> {
        let Some((store, channel)) = self.lookup else {
            return Ok(());
        };
        // A released link may hide an active holder the cycle did not read: ask the store then.
        let known = self
            .by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target_id)
            .is_some_and(|link| !link.released);
        if known || self.is_free(target_id) {
            return Ok(());
        }
        let wanted = [TargetId::from(target_id)];
        let holders = store
            .record_heads_with(channel, RecordKey::TargetIds(&wanted))
            .await
            .map_err(|e| ScimClientError::OwnerUnknown {
                target_id: target_id.to_owned(),
                reason: crate::state::full_message(&e),
            })?;
        self.learn(links(&holders));
        Ok(())
    }

    fn is_free(&self, target_id: &str) -> bool {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(target_id)
    }

    /// Asks the store once about these target ids (a Bulk request's new users) before each is
    /// claimed, rather than once per user. Best effort: a failure leaves each claim to ask.
    pub async fn look_up_all(&self, target_ids: &[TargetId]) {
        let Some((store, channel)) = self.lookup else {
            return;
        };
        let unknown: Vec<TargetId> = {
            let owners = self
                .by_target
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            target_ids
                .iter()
                .filter(|id| !owners.contains_key(*id) && !self.is_free(id.as_str()))
                .cloned()
                .collect()
        };
        if unknown.is_empty() {
            return;
        }
        let holders = match store
            .record_heads_with(channel, RecordKey::TargetIds(&unknown))
            .await
        {
            Ok(holders) => holders,
            Err(e) => {
                tracing::debug!(error = %e, "owners look-up failed; each claim asks on its own");
                return;
            }
        };
        let held = links(&holders);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(unknown.into_iter().filter(|id| !held.contains_key(id)));
        self.learn(held);
    }

    /// Forgets the links of these users once their records are saved, when the store is there
    /// to answer for them: a full read creating a million users a page at a time does not hold
    /// a million links. Without a store, nothing is forgotten. Only these users' links go: the
    /// users of a page still being applied keep theirs.
    pub fn forget_saved(&self, saved: &HashSet<&EntryGuid>) {
        if self.lookup.is_none() || saved.is_empty() {
            return;
        }
        let mut forgotten = Vec::new();
        self.by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|target_id, link| {
                let keep = !saved.contains(&link.guid);
                if !keep {
                    forgotten.push(target_id.clone());
                }
                keep
            });
        // Their records hold them now: no longer free.
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        for target_id in &forgotten {
            free.remove(target_id);
        }
    }

    /// Adds links read from the store. What the cycle claimed meanwhile is newer than the
    /// store; an active holder wins over a released one.
    pub fn learn(&self, links: HashMap<TargetId, Link>) {
        let mut owners = self
            .by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (target, link) in links {
            match owners.get(&target) {
                Some(kept) if !kept.released || link.released => {}
                _ => {
                    owners.insert(target, link);
                }
            }
        }
    }

    /// Claims the target user `target_id`, found by `identifier`, for the entry `guid` (`dn`):
    /// refused when another entry of the channel has it; `Ok(Some(guid))` when it passes from
    /// a released entry (see [`Link::released`]), whose record the caller drops.
    pub async fn claim(
        &self,
        target_id: &str,
        identifier: &str,
        guid: &EntryGuid,
        dn: &str,
    ) -> Result<Option<EntryGuid>, ScimClientError> {
        self.look_up(target_id).await?;
        // The map is changed in single inserts: a panic elsewhere cannot leave it half-done.
        let mut owners = self
            .by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = match owners.get(target_id) {
            Some(owner) if owner.guid == *guid => None,
            Some(owner) if !owner.released => {
                return Err(ScimClientError::TargetUserTaken {
                    identifier: identifier.to_owned(),
                    target_id: target_id.to_owned(),
                    owner: owner.dn.clone(),
                });
            }
            Some(owner) => Some(owner.guid.clone()),
            None => None,
        };
        owners.insert(
            target_id.into(),
            Link {
                guid: guid.clone(),
                dn: dn.to_owned(),
                released: false,
            },
        );
        Ok(previous)
    }
}

/// Target id → the entry whose user it is, from the records. Where two records name one target
/// user (an account handed over by a cycle that stopped before dropping the old record), the
/// one not released wins.
pub fn links<'a>(records: impl IntoIterator<Item = &'a Record>) -> HashMap<TargetId, Link> {
    let mut links: HashMap<TargetId, Link> = HashMap::new();
    for record in records {
        let Some(target_id) = &record.target_id else {
            continue;
        };
        let link = Link {
            guid: record.guid.clone(),
            dn: record.dn.clone(),
            released: record.left_and_disabled(),
        };
        match links.get(target_id) {
            Some(kept) if !kept.released => {}
            _ => {
                links.insert(target_id.clone(), link);
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(guid: &str, released: bool) -> Link {
        Link {
            guid: guid.into(),
            dn: format!("uid={guid}"),
            released,
        }
    }

    #[tokio::test]
    async fn a_target_user_is_claimed_by_one_entry_only() {
        let owners = Owners::default();
        assert_eq!(
            owners
                .claim("t1", "ann", &"g1".into(), "uid=ann")
                .await
                .unwrap(),
            None
        );
        // The same entry again (a retry, a resumed create) is fine.
        assert_eq!(
            owners
                .claim("t1", "ann", &"g1".into(), "uid=ann")
                .await
                .unwrap(),
            None
        );
        let refused = owners
            .claim("t1", "ANN", &"g2".into(), "uid=ann2")
            .await
            .unwrap_err();
        let text = refused.to_string();
        assert!(text.contains("uid=ann") && text.contains("ANN"), "{text}");
        assert_eq!(
            owners
                .claim("t2", "bob", &"g2".into(), "uid=bob")
                .await
                .unwrap(),
            None
        );
    }

    /// With a store to look up, the links of users whose records are saved are forgotten (a
    /// first cycle does not hold one per user created) and the store still answers for them;
    /// without one, nothing is forgotten.
    #[tokio::test]
    async fn claims_whose_records_are_saved_are_forgotten_and_still_refused() {
        use crate::state::RecordStore;
        let dir = tempfile::tempdir().unwrap();
        let store = scimbridge_store::SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
        let channel = ChannelKey::new("app", "staff");
        let owners = Owners::with_lookup(HashMap::new(), &store, &channel);
        owners
            .claim("t1", "ann", &"g1".into(), "uid=ann")
            .await
            .unwrap();
        let mut record = scimbridge_testkit::store_conformance::record(
            "g1",
            scimbridge_model::RecordStatus::Provisioned,
        );
        record.target_id = Some("t1".into());
        store.save_record(&channel, &record).await.unwrap();
        let saved =
            |guids: &[&str]| -> Vec<EntryGuid> { guids.iter().map(|g| (*g).into()).collect() };
        owners.forget_saved(&saved(&["g1"]).iter().collect());
        assert!(owners.by_target.lock().unwrap().is_empty());
        let refused = owners.claim("t1", "ann", &"g2".into(), "uid=ann2").await;
        assert!(refused.is_err(), "{refused:?}");

        // Asked at once about a Bulk request's users: a free id is claimed once, a held one
        // stays its holder's, and both are forgotten with the page; the claim of a user of
        // a page still being applied stays.
        owners
            .claim("t5", "eve", &"g5".into(), "uid=eve")
            .await
            .unwrap();
        owners.look_up_all(&["t1".into(), "t9".into()]).await;
        assert!(owners.is_free("t9") && !owners.is_free("t1"));
        owners
            .claim("t9", "cy", &"g3".into(), "uid=cy")
            .await
            .unwrap();
        let taken = owners.claim("t9", "cy", &"g4".into(), "uid=cy2").await;
        assert!(taken.is_err(), "{taken:?}");
        let held = owners.claim("t1", "ann", &"g2".into(), "uid=ann2").await;
        assert!(held.is_err(), "{held:?}");
        owners.forget_saved(&saved(&["g3"]).iter().collect());
        assert!(!owners.is_free("t9"));
        let kept = owners.claim("t5", "eve", &"g6".into(), "uid=eve2").await;
        assert!(kept.is_err(), "{kept:?}");
        let (kept, forgotten) = {
            let links = owners.by_target.lock().unwrap();
            (links.contains_key("t5"), !links.contains_key("t9"))
        };
        assert!(kept && forgotten);

        let without_store = Owners::default();
        without_store
            .claim("t1", "ann", &"g1".into(), "uid=ann")
            .await
            .unwrap();
        without_store.forget_saved(&saved(&["g1"]).iter().collect());
        let refused = without_store
            .claim("t1", "ann", &"g2".into(), "uid=ann2")
            .await;
        assert!(refused.is_err(), "{refused:?}");
    }

    #[tokio::test]
    async fn a_released_account_passes_to_the_entry_that_takes_it_once() {
        let owners = Owners::new(HashMap::from([("t1".into(), link("old", true))]));
        assert_eq!(
            owners
                .claim("t1", "ann", &"new".into(), "uid=ann")
                .await
                .unwrap(),
            Some("old".into())
        );
        // Now it is the new entry's, and not released.
        assert!(
            owners
                .claim("t1", "ann", &"third".into(), "uid=x")
                .await
                .is_err()
        );
    }
}
