//! The new users of a full read, created as the read gives them (see [`CreateAsRead`]): each
//! page's new users are mapped, planned and applied before the next page is read, so that a
//! first cycle holds a page of users, not the directory it provisions. A user whose userName a
//! record already holds, or an earlier user of the page, is left to the cycle's plan, which
//! decides between them as it always does (`refuse_shared_user_names`): the first user created
//! keeps the name. Creates are never held by the guard, so nothing the guard weighs is sent
//! early; the users created do not count among those the guard takes its shares of.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use scimbridge_model::{
    DataStore, EffectiveSourceSettings, EntryGuid, Operation, PlannedOperation,
};
use tokio::sync::{Mutex, OnceCell};

use super::full_read::CreateAsRead;
use super::plan::map_candidate;
use super::users::apply_users;
use super::{CycleContext, CycleError, Tally, TargetSession, bulk_capabilities};
use crate::apply::Capabilities;
use crate::detect::Fingerprinted;
use crate::plan::plan_users;
use crate::state::RecordKey;

/// Creates the new users of a cycle's full read page by page, with the cycle's target session
/// and tally.
pub(super) struct CreatedAsRead<'c, 'a> {
    cx: &'c CycleContext<'a>,
    target: &'c TargetSession<'a>,
    settings: EffectiveSourceSettings,
    /// Whether creates go in Bulk requests: asked of the target with the first page.
    bulk: OnceCell<Option<Capabilities>>,
    tally: Mutex<&'c mut Tally>,
    /// Users created or linked so far.
    created: AtomicU64,
}

impl<'c, 'a> CreatedAsRead<'c, 'a> {
    pub(super) fn new(
        cx: &'c CycleContext<'a>,
        target: &'c TargetSession<'a>,
        data_store: &DataStore,
        tally: &'c mut Tally,
    ) -> CreatedAsRead<'c, 'a> {
        CreatedAsRead {
            cx,
            target,
            settings: cx.channel.source_settings.effective(data_store.ldap_type()),
            bulk: OnceCell::new(),
            tally: Mutex::new(tally),
            created: AtomicU64::new(0),
        }
    }

    /// The cycle's tally, with what was created.
    pub(super) fn into_tally(self) -> &'c mut Tally {
        self.tally.into_inner()
    }

    /// The userNames (lower-cased) of `operations`' creates that a record of the channel holds.
    async fn names_held(
        &self,
        operations: &[PlannedOperation],
    ) -> Result<HashSet<String>, CycleError> {
        let names: Vec<String> = operations
            .iter()
            .filter(|o| matches!(o.operation, Operation::Create { .. }))
            .filter_map(|o| o.user_name.clone())
            .collect();
        if names.is_empty() {
            return Ok(HashSet::new());
        }
        let holders = self
            .cx
            .store
            .record_heads_with(self.cx.key, RecordKey::UserNames(&names))
            .await?;
        Ok(holders
            .iter()
            .filter_map(|r| r.user_name.as_deref())
            .map(str::to_lowercase)
            .collect())
    }
}

#[async_trait]
impl CreateAsRead for CreatedAsRead<'_, '_> {
    async fn create(
        &self,
        new_users: Vec<Fingerprinted>,
    ) -> Result<Vec<Fingerprinted>, CycleError> {
        let cx = self.cx;
        let mut tally = self.tally.lock().await;
        // As `users::apply_users` decides for each unit: a chunk left unsent by a target that
        // answers again does not stop the creates of later pages.
        if self.target.outage.is_down() || cx.progress.should_stop() {
            // The cycle stops early and keeps its cursor: the next one reads these users again.
            // Every one counts (a failure to record too), so that the cycle is seen stopped.
            tally.not_sent += new_users.len() as u64;
            return Ok(Vec::new());
        }
        let no_records = HashMap::new();
        let candidates = new_users
            .iter()
            .map(|user| map_candidate(user.clone(), cx.channel, &self.settings, &no_records))
            .collect();
        let plan = plan_users(
            candidates,
            Vec::new(),
            &no_records,
            &cx.connection.options,
            0,
        );
        let held = self.names_held(&plan.operations).await?;
        let mut taken = HashSet::new();
        let (now, left): (Vec<PlannedOperation>, Vec<PlannedOperation>) = plan
            .operations
            .into_iter()
            .partition(|op| match (&op.operation, op.user_name.as_deref()) {
                (Operation::Create { .. }, Some(name)) => {
                    let name = name.to_lowercase();
                    !held.contains(&name) && taken.insert(name)
                }
                _ => true,
            });
        let left: HashSet<&EntryGuid> = left.iter().map(|op| &op.guid).collect();
        let bulk = self
            .bulk
            .get_or_init(|| bulk_capabilities(cx, self.target, true))
            .await;
        let before = tally.summary.created + tally.summary.linked;
        apply_users(
            cx,
            self.target,
            (&now, &[]),
            bulk.as_ref(),
            None,
            &mut tally,
        )
        .await?;
        let created = tally.summary.created + tally.summary.linked - before;
        self.created.fetch_add(created, Ordering::Relaxed);
        Ok(new_users
            .into_iter()
            .filter(|user| left.contains(&user.entry.guid))
            .collect())
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}
