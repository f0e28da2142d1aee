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
    /// Users creates made that the store was not asked about yet ([`Owners::claim_created`]),
    /// each with the first entry that claimed it: until [`Owners::check`], no other entry gets
    /// them.
    unchecked: Mutex<HashMap<TargetId, Link>>,
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
            unchecked: Mutex::default(),
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
            unchecked: Mutex::default(),
            lookup: Some((store, channel)),
        }
    }

    /// Reads the owner of `target_id` from the store when it is not known yet.
    async fn look_up(&self, target_id: &str) -> Result<(), ScimClientError> {
        let Some((store, channel)) = self.lookup else {
            return Ok(());
        };
        if self.knows(target_id) || self.is_free(target_id) {
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
        self.claim_known(target_id, identifier, guid, dn)
    }

    /// Claims the target user a create just made, `target_id`, as [`Owners::claim`] does, but
    /// without asking the state store when the cycle does not know the user: then the claim
    /// waits (`Ok(Claim::Unchecked)`), and the caller has [`Owners::check`] ask the store about
    /// many such claims at once, before their records are saved. A target should give a create
    /// a user nobody has; one that gives another entry's (an upsert) is found out there.
    pub fn claim_created(
        &self,
        target_id: &str,
        identifier: &str,
        guid: &EntryGuid,
        dn: &str,
    ) -> Result<Claim, ScimClientError> {
        if self.lookup.is_none() || self.knows(target_id) || self.is_free(target_id) {
            return self
                .claim_known(target_id, identifier, guid, dn)
                .map(Claim::Checked);
        }
        // A second entry given the same user waits too: the check names who really has it.
        self.unchecked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(target_id.into())
            .or_insert_with(|| Link {
                guid: guid.clone(),
                dn: dn.to_owned(),
                released: false,
            });
        Ok(Claim::Unchecked)
    }

    /// Whether the cycle knows which entry holds `target_id` (a released holder may hide an
    /// active one the cycle did not read).
    fn knows(&self, target_id: &str) -> bool {
        self.by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target_id)
            .is_some_and(|link| !link.released)
    }

    /// Asks the state store, at once, about the claims [`Owners::claim_created`] left
    /// unchecked: (target id, the entry that claimed it). Returns the verdict on each, in
    /// order, as [`Owners::claim`] would have decided: another entry's record holding the user
    /// refuses it, then an entry of this cycle that claimed it first; a released holder's
    /// account passes. The user is then the winner's, or the holder's.
    pub async fn check(
        &self,
        claims: &[(TargetId, &EntryGuid)],
    ) -> Result<Vec<Verdict>, crate::state::StoreError> {
        let Some((store, channel)) = self.lookup else {
            return Ok(vec![Verdict::Ours; claims.len()]);
        };
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<TargetId> = claims.iter().map(|(id, _)| id.clone()).collect();
        let read = store
            .record_heads_with(channel, RecordKey::TargetIds(&wanted))
            .await;
        let mut unchecked = self
            .unchecked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let holders = match read {
            Ok(heads) => links(&heads),
            Err(e) => {
                // These creates fail unlinked: their users are nobody's claim any more.
                for (target_id, guid) in claims {
                    if unchecked.get(target_id).is_some_and(|f| f.guid == **guid) {
                        unchecked.remove(target_id);
                    }
                }
                return Err(e);
            }
        };
        let mut owners = self
            .by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut verdicts = Vec::with_capacity(claims.len());
        for (target_id, guid) in claims {
            let holder = holders.get(target_id).filter(|h| h.guid != **guid);
            let first = unchecked.get(target_id).filter(|f| f.guid != **guid);
            // An entry of this cycle whose claim was decided already (a first claimant checked
            // before this one) holds it now.
            let decided = owners
                .get(target_id)
                .filter(|o| o.guid != **guid && !o.released)
                .cloned();
            let verdict = match (holder, first.or(decided.as_ref())) {
                (Some(holder), _) if !holder.released => Verdict::Taken {
                    owner: holder.dn.clone(),
                },
                (_, Some(earlier)) => Verdict::Taken {
                    owner: earlier.dn.clone(),
                },
                (Some(holder), None) => Verdict::TookOver(holder.guid.clone()),
                (None, None) => Verdict::Ours,
            };
            if first.is_none()
                && let Some(mine) = unchecked.remove(target_id)
            {
                // The first claimant decided: the user is its, or the holder's.
                let owner = match (&verdict, holder, decided) {
                    (Verdict::Taken { .. }, Some(holder), _) => holder.clone(),
                    (Verdict::Taken { .. }, None, Some(earlier)) => earlier,
                    _ => mine,
                };
                owners.insert(target_id.clone(), owner);
            }
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }

    /// The in-memory part of a claim: refused when the cycle knows another entry has the user.
    fn claim_known(
        &self,
        target_id: &str,
        identifier: &str,
        guid: &EntryGuid,
        dn: &str,
    ) -> Result<Option<EntryGuid>, ScimClientError> {
        let taken = |owner: &Link| ScimClientError::TargetUserTaken {
            identifier: identifier.to_owned(),
            target_id: target_id.to_owned(),
            owner: owner.dn.clone(),
        };
        // A user another entry's create made and the store was not asked about yet.
        let first = self
            .unchecked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target_id)
            .filter(|first| first.guid != *guid)
            .cloned();
        // The map is changed in single inserts: a panic elsewhere cannot leave it half-done.
        let mut owners = self
            .by_target
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = match (owners.get(target_id), &first) {
            (Some(owner), _) if owner.guid == *guid => None,
            (Some(owner), _) if !owner.released => return Err(taken(owner)),
            (_, Some(first)) => return Err(taken(first)),
            (Some(owner), None) => Some(owner.guid.clone()),
            (None, None) => None,
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

/// How a claim of a created user stands (see [`Owners::claim_created`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Taken with what the cycle knows: `Some(guid)` when the user passes from that released
    /// entry.
    Checked(Option<EntryGuid>),
    /// Taken without asking the state store: [`Owners::check`] decides.
    Unchecked,
}

/// What the state store says of a claim taken unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No other entry holds the user.
    Ours,
    /// The user passes from this released entry (a rehire), whose record goes.
    TookOver(EntryGuid),
    /// Another entry (at `owner`, its DN) holds the user: the claim is refused.
    Taken { owner: String },
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

    /// A state store in `dir`.
    async fn store_in(dir: &tempfile::TempDir) -> scimbridge_store::SqliteStore {
        scimbridge_store::SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap()
    }

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
        let store = store_in(&dir).await;
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

    /// Users creates made are claimed without asking the store, then checked a batch at a time
    /// with the verdicts `claim` would have given: a record holding the user refuses it (every
    /// claimant learns who holds it), then the first entry of the cycle that claimed it; a
    /// released holder's account passes. Meanwhile no other entry gets the user.
    #[tokio::test]
    async fn created_users_are_claimed_unchecked_then_checked_at_once() {
        use crate::state::RecordStore;
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;
        let channel = ChannelKey::new("app", "staff");
        let save = async |guid: &str, target_id: &str, status| {
            let mut record = scimbridge_testkit::store_conformance::record(guid, status);
            record.target_id = Some(target_id.into());
            if status == scimbridge_model::RecordStatus::Disabled {
                record.source_fingerprint = None;
            }
            store.save_record(&channel, &record).await.unwrap();
            record.dn
        };
        let holder_dn = save("g1", "t1", scimbridge_model::RecordStatus::Provisioned).await;
        save("g9", "t4", scimbridge_model::RecordStatus::Disabled).await;
        let owners = Owners::with_lookup(HashMap::new(), &store, &channel);
        let created = |target: &str, guid: &str| {
            owners.claim_created(target, "name", &guid.into(), &format!("uid={guid}"))
        };
        let guid = |g: &str| EntryGuid::from(g);
        let (g2, g3, g5, g7, g8, g10) = (
            guid("g2"),
            guid("g3"),
            guid("g5"),
            guid("g7"),
            guid("g8"),
            guid("g10"),
        );

        // Held by a record: both claimants are refused, naming the holder.
        assert_eq!(created("t1", "g2").unwrap(), Claim::Unchecked);
        assert_eq!(created("t1", "g3").unwrap(), Claim::Unchecked);
        let verdicts = owners
            .check(&[("t1".into(), &g2), ("t1".into(), &g3)])
            .await
            .unwrap();
        let taken = Verdict::Taken {
            owner: holder_dn.clone(),
        };
        assert_eq!(verdicts, [taken.clone(), taken]);
        let later = owners.claim("t1", "name", &"g4".into(), "uid=g4").await;
        assert!(later.unwrap_err().to_string().contains(&holder_dn));

        // Held by nobody: another entry finding the user before the check is refused, naming
        // the first claimant, which then has it.
        assert_eq!(created("t2", "g5").unwrap(), Claim::Unchecked);
        let found = owners.claim("t2", "name", &"g6".into(), "uid=g6").await;
        assert!(found.unwrap_err().to_string().contains("uid=g5"));
        assert_eq!(
            owners.check(&[("t2".into(), &g5)]).await.unwrap(),
            [Verdict::Ours]
        );
        assert_eq!(created("t2", "g5").unwrap(), Claim::Checked(None));
        assert!(created("t2", "g6").is_err());

        // The second claimant checked before the first.
        created("t3", "g7").unwrap();
        created("t3", "g8").unwrap();
        let second = owners.check(&[("t3".into(), &g8)]).await.unwrap();
        assert_eq!(
            second,
            [Verdict::Taken {
                owner: "uid=g7".into()
            }]
        );
        assert_eq!(
            owners.check(&[("t3".into(), &g7)]).await.unwrap(),
            [Verdict::Ours]
        );

        // The first claimant checked first, in one batch, or in batches one after the other.
        created("t5", "g7").unwrap();
        created("t5", "g8").unwrap();
        let both = owners
            .check(&[("t5".into(), &g7), ("t5".into(), &g8)])
            .await
            .unwrap();
        let second = Verdict::Taken {
            owner: "uid=g7".into(),
        };
        assert_eq!(both, [Verdict::Ours, second.clone()]);
        created("t6", "g7").unwrap();
        created("t6", "g8").unwrap();
        assert_eq!(
            owners.check(&[("t6".into(), &g7)]).await.unwrap(),
            [Verdict::Ours]
        );
        assert_eq!(owners.check(&[("t6".into(), &g8)]).await.unwrap(), [second]);

        // A released holder's account passes, once.
        created("t4", "g10").unwrap();
        created("t4", "g5").unwrap();
        let passed = owners
            .check(&[("t4".into(), &g10), ("t4".into(), &g5)])
            .await
            .unwrap();
        let refused = Verdict::Taken {
            owner: "uid=g10".into(),
        };
        assert_eq!(passed, [Verdict::TookOver("g9".into()), refused]);

        // Without a store to ask, what the cycle knows decides at once.
        let without_store = Owners::default();
        let claim = without_store.claim_created("t1", "name", &g2, "uid=g2");
        assert_eq!(claim.unwrap(), Claim::Checked(None));
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
