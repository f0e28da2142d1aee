//! Stage 5, apply: the only stage that writes to the target. Each planned operation becomes one
//! or two SCIM requests and a new record (or none, when the record is dropped).

mod auth;
pub mod bulk;
pub mod dialect;
pub mod diff;
pub mod groups;
mod owners;
mod politeness;
pub mod scim_client;

use scimbridge_model::{
    CycleSummary, EntryGuid, Operation, PlannedOperation, ProvisioningOptions, Record,
    RecordStatus, TargetId,
};
use serde_json::Value;

pub use auth::AuthError;
pub use owners::{Claim, Link, Owners, Verdict, links};
pub use politeness::RetryPolicy;
pub use scim_client::{
    Capabilities, CheckFailure, CheckReport, ScimClient, ScimClientError, TransportKind,
    check_target,
};

/// What happened to one planned operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// An existing target user was found by the unique user identifier, linked and updated.
    Linked,
    Updated,
    Disabled,
    Deleted,
    Unchanged,
    Skipped,
    Blocked,
    Forgotten,
    Failed(String),
}

impl Outcome {
    pub fn count(&self, summary: &mut CycleSummary) {
        match self {
            Outcome::Created => summary.created += 1,
            Outcome::Linked => summary.linked += 1,
            Outcome::Updated => summary.updated += 1,
            Outcome::Disabled => summary.disabled += 1,
            Outcome::Deleted => summary.deleted += 1,
            Outcome::Unchanged => summary.unchanged += 1,
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Blocked => summary.blocked += 1,
            Outcome::Forgotten => {}
            Outcome::Failed(_) => summary.failed += 1,
        }
    }
}

/// The result of applying one operation: the record to store (`None` drops it) and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub record: Option<Record>,
    pub outcome: Outcome,
    /// Set when the operation failed for a reason that is the target's, not the record's (see
    /// [`ScimClientError::target_unavailable`]): the cycle decides whether the target is down.
    pub target_failure: Option<TargetFailure>,
    /// The GUID of the entry that left and whose disabled account this create took over: its
    /// record is dropped.
    pub took_over: Option<EntryGuid>,
    /// A create's claim of the user it made, not yet checked against the state store
    /// ([`Owners::claim_created`]): the cycle checks it ([`Applied::checked`]) before the
    /// record is saved or the outcome counted.
    pub unchecked_claim: Option<UncheckedClaim>,
}

/// The user a create made, claimed without asking the state store whether another entry has
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncheckedClaim {
    pub target_id: TargetId,
    /// The unique user identifier's value the create was made with.
    pub identifier: String,
}

/// A failure that may be the target's rather than the record's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetFailure {
    /// The target may have carried the request out although no answer said so.
    pub outcome_unknown: bool,
    /// The target answered 403: these credentials may do this, or may do nothing any more.
    pub forbidden: bool,
}

impl TargetFailure {
    /// `sent_unanswered`: an earlier request of the same operation may have acted (a create
    /// whose answer was lost, then a look-up that failed).
    pub fn of(error: &ScimClientError, sent_unanswered: bool) -> Option<TargetFailure> {
        error.target_unavailable().then(|| TargetFailure {
            outcome_unknown: error.outcome_unknown() || sent_unanswered,
            forbidden: error.status() == Some(403),
        })
    }
}

impl Applied {
    fn new(record: Option<Record>, outcome: Outcome) -> Applied {
        Applied {
            record,
            outcome,
            target_failure: None,
            took_over: None,
            unchecked_claim: None,
        }
    }

    /// This create as the state store's `verdict` on its unchecked claim leaves it: as it was,
    /// taking over a released entry's account, or failed (another entry has the user, or the
    /// store could not say: `Err(reason)`), unlinked, as a claim refused in the create would.
    pub fn checked(
        self,
        op: &PlannedOperation,
        existing: Option<&Record>,
        verdict: Result<&Verdict, &str>,
    ) -> Applied {
        let Some(claim) = &self.unchecked_claim else {
            return self;
        };
        let refused = |error: ScimClientError| failed_by(op, existing, &error, false, false);
        match verdict {
            Ok(Verdict::Ours) => Applied {
                unchecked_claim: None,
                ..self
            },
            Ok(Verdict::TookOver(old)) => Applied {
                took_over: Some(old.clone()),
                unchecked_claim: None,
                ..self
            },
            Ok(Verdict::Taken { owner }) => refused(ScimClientError::TargetUserTaken {
                identifier: claim.identifier.clone(),
                target_id: claim.target_id.to_string(),
                owner: owner.clone(),
            }),
            Err(reason) => refused(ScimClientError::OwnerUnknown {
                target_id: claim.target_id.to_string(),
                reason: reason.to_owned(),
            }),
        }
    }
}

/// Performs one operation against the target. Never fails as a whole: a failure is recorded on
/// the operation's record and the cycle goes on.
pub async fn apply_operation(
    client: &ScimClient,
    op: &PlannedOperation,
    existing: Option<&Record>,
    options: &ProvisioningOptions,
    owners: &Owners<'_>,
) -> Applied {
    match &op.operation {
        Operation::Create { image } => match create_or_link(client, op, image, owners).await {
            // A linked user got the image without its create-only fields.
            Ok(written) if written.outcome == Outcome::Linked => {
                settled(op, existing, written, op.link_image(image))
            }
            Ok(written) => settled(op, existing, written, image),
            Err(failure) => failed_by(op, existing, &failure.error, false, failure.posted),
        },
        Operation::Update { target_id, image } | Operation::Disable { target_id, image } => {
            let outcome = if matches!(op.operation, Operation::Disable { .. }) {
                Outcome::Disabled
            } else {
                Outcome::Updated
            };
            match update_user(client, op, target_id, existing, image).await {
                Ok(version) => settled(
                    op,
                    existing,
                    Written {
                        target_id: target_id.clone(),
                        version,
                        outcome,
                        took_over: None,
                        unchecked: None,
                    },
                    image,
                ),
                // Deleted in the target by someone else: a user to disable is as good as gone;
                // a user to update is linked again or created again, as the options allow.
                Err(e) if e.status() == Some(404) && outcome == Outcome::Disabled => Applied {
                    outcome: Outcome::Disabled,
                    ..deleted(op, existing)
                },
                Err(e) if e.status() == Some(404) && options.user_create => {
                    tracing::info!(user = op.label(), %target_id, "target user is gone; linking or creating it again");
                    match create_or_link(client, op, image, owners).await {
                        Ok(written) => settled(op, existing, written, image),
                        Err(failure) => {
                            failed_by(op, existing, &failure.error, true, failure.posted)
                        }
                    }
                }
                Err(e) if e.status() == Some(404) => failed(
                    op,
                    existing,
                    format!("target user {target_id} no longer exists, and user create is off"),
                    true,
                ),
                Err(e) => failed_by(op, existing, &e, false, false),
            }
        }
        Operation::Delete { target_id } => {
            let known = existing.and_then(|r| r.target_version.as_deref());
            let result = conditionally(client, target_id, known, UserWrite::Delete).await;
            match result {
                // Already gone is what we wanted.
                Ok(_) => deleted(op, existing),
                Err(e) if e.status() == Some(404) => deleted(op, existing),
                Err(e) => failed_by(op, existing, &e, false, false),
            }
        }
        Operation::Refresh => Applied::new(refreshed(op, existing), Outcome::Unchanged),
        Operation::Forget => Applied::new(None, Outcome::Forgotten),
        Operation::Skip => Applied::new(
            Some(Record {
                status: RecordStatus::Skipped,
                last_error: Some(op.reason.clone()),
                target_id: None,
                applied_image: None,
                target_version: None,
                ..fresh_record(op, existing)
            }),
            Outcome::Skipped,
        ),
        Operation::Block => {
            let mut record = fresh_record(op, existing);
            // A leaver keeps its fingerprint so that it is reconsidered once the option allows it.
            record.source_fingerprint = op
                .fingerprint
                .clone()
                .or_else(|| existing.and_then(|r| r.source_fingerprint.clone()));
            record.status = RecordStatus::Blocked;
            record.last_error = Some(op.reason.clone());
            Applied::new(Some(record), Outcome::Blocked)
        }
        Operation::Fail => failed(op, existing, op.reason.clone(), false),
    }
}

/// Looks the user up by the unique user identifier before creating it, so a user that already
/// exists (made by hand, or by a create whose answer was lost) is linked, never duplicated. A
/// create whose outcome is unknown (timeout, broken connection, 5xx) is retried only after
/// another look-up.
async fn create_or_link(
    client: &ScimClient,
    op: &PlannedOperation,
    image: &Value,
    owners: &Owners<'_>,
) -> Result<Written, CreateFailure> {
    let mut posted = 0;
    look_up_and_create(client, op, image, owners, &mut posted)
        .await
        .map_err(|error| CreateFailure {
            error,
            posted: posted > 0,
        })
}

/// A create that failed, and whether a POST went unanswered on the way (the user may exist).
struct CreateFailure {
    error: ScimClientError,
    posted: bool,
}

/// [`create_or_link`], counting in `posted` the creates sent whose outcome stayed unknown.
async fn look_up_and_create(
    client: &ScimClient,
    op: &PlannedOperation,
    image: &Value,
    owners: &Owners<'_>,
    posted: &mut u32,
) -> Result<Written, ScimClientError> {
    let user_name = op.user_name.as_deref().unwrap_or_default();
    let identifier = client
        .identifier_value(user_name, image)
        .ok_or(ScimClientError::MissingIdentifier)?;
    let policy = client.retry_policy();
    loop {
        if let Some(id) = client.find_user(&identifier).await? {
            let took_over = owners.claim(&id, &identifier, &op.guid, &op.dn).await?;
            // Ours when our own create went unanswered, in this cycle or in one a crash
            // interrupted: it gets the whole image. Someone else's gets no create-only value
            // (a password, say).
            let ours = *posted > 0 || op.resumed_cycle.is_some();
            let written = if ours { image } else { op.link_image(image) };
            let version = link_user(client, &id, written).await?;
            let outcome = if ours {
                Outcome::Created
            } else {
                Outcome::Linked
            };
            return Ok(Written {
                target_id: id.into(),
                version,
                outcome,
                took_over,
                unchecked: None,
            });
        }
        match client.create_user(image).await {
            Ok((id, version)) => {
                // Whether another entry has the user is asked of the store with other
                // creates', before the record is saved (`UncheckedClaim`).
                let target_id = TargetId::from(id);
                let (took_over, unchecked) =
                    match owners.claim_created(&target_id, &identifier, &op.guid, &op.dn)? {
                        Claim::Checked(took_over) => (took_over, None),
                        Claim::Unchecked => (
                            None,
                            Some(UncheckedClaim {
                                target_id: target_id.clone(),
                                identifier,
                            }),
                        ),
                    };
                return Ok(Written {
                    target_id,
                    version,
                    outcome: Outcome::Created,
                    took_over,
                    unchecked,
                });
            }
            // Created by someone else between our look-up and our create: link it.
            Err(e) if e.is_duplicate() => {
                return match client.find_user(&identifier).await? {
                    Some(id) => {
                        let took_over = owners.claim(&id, &identifier, &op.guid, &op.dn).await?;
                        let version = link_user(client, &id, op.link_image(image)).await?;
                        Ok(Written {
                            target_id: id.into(),
                            version,
                            outcome: Outcome::Linked,
                            took_over,
                            unchecked: None,
                        })
                    }
                    None => Err(e),
                };
            }
            Err(e) if e.outcome_unknown() && *posted < policy.max_retries => {
                tracing::debug!(user = user_name, error = %e, "create went unanswered; looking the user up before trying again");
                tokio::time::sleep(policy.backoff(*posted)).await;
                *posted += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A user write that settled: its target id, its new version, and what it was.
struct Written {
    target_id: TargetId,
    version: Option<String>,
    outcome: Outcome,
    /// The released entry whose account this write took over (see `Owners::claim`).
    took_over: Option<EntryGuid>,
    /// The claim of a created user that the state store has not confirmed yet.
    unchecked: Option<UncheckedClaim>,
}

/// Updates a provisioned user from the image last applied. Returns the new version. After an
/// interrupted cycle the target may hold something else than the image last applied, so every
/// mapped attribute is written.
async fn update_user(
    client: &ScimClient,
    op: &PlannedOperation,
    target_id: &str,
    existing: Option<&Record>,
    image: &Value,
) -> Result<Option<String>, ScimClientError> {
    let nothing = Value::Object(Default::default());
    let applied = if op.resumed_cycle.is_some() {
        Some(&nothing)
    } else {
        existing.and_then(|r| r.applied_image.as_ref())
    };
    let known = existing.and_then(|r| r.target_version.as_deref());
    write_user(client, target_id, applied, known, image).await
}

/// Brings a user found in the target in line with the image. With PATCH, attributes the
/// channel does not map stay as they are; PUT replaces the whole user.
async fn link_user(
    client: &ScimClient,
    id: &str,
    image: &Value,
) -> Result<Option<String>, ScimClientError> {
    let nothing = Value::Object(Default::default());
    write_user(client, id, Some(&nothing), None, image).await
}

/// Writes the image: when the target supports PATCH and we know what it holds of ours
/// (`before`), only what changed; else the whole user with PUT. Returns the new version.
async fn write_user(
    client: &ScimClient,
    id: &str,
    before: Option<&Value>,
    known_version: Option<&str>,
    image: &Value,
) -> Result<Option<String>, ScimClientError> {
    if let Some(before) = before
        && client.capabilities().await?.patch
    {
        let operations = diff::patch_operations(before, image);
        if operations.is_empty() {
            return Ok(known_version.map(str::to_owned));
        }
        return conditionally(client, id, known_version, UserWrite::Patch(&operations)).await;
    }
    conditionally(client, id, known_version, UserWrite::Replace(image)).await
}

/// A write to one target user.
#[derive(Clone, Copy)]
enum UserWrite<'w> {
    Patch(&'w [Value]),
    Replace(&'w Value),
    Delete,
}

impl UserWrite<'_> {
    /// Sends the write with `If-Match: version` when given; returns the new version.
    async fn send(
        self,
        client: &ScimClient,
        id: &str,
        version: Option<&str>,
    ) -> Result<Option<String>, ScimClientError> {
        match self {
            UserWrite::Patch(operations) => client.patch_user(id, operations, version).await,
            UserWrite::Replace(image) => client.replace_user(id, image, version).await,
            UserWrite::Delete => client.delete_user(id, version).await.map(|()| None),
        }
    }
}

/// Runs a write with `If-Match` when the target supports ETags: with the version of our last
/// write, else the one read from the target. After a 412 (the user changed in the target since)
/// the version is read again and the write repeated once, since the image is what the source
/// says the user must be. (A retry after a lost answer reads the version itself: see
/// `ScimClient::send_conditional`.)
async fn conditionally(
    client: &ScimClient,
    id: &str,
    known: Option<&str>,
    write: UserWrite<'_>,
) -> Result<Option<String>, ScimClientError> {
    // An enum, not an async closure: the futures of a cycle must stay provably `Send` when a
    // page's creates are sent from within the read.
    if !client.capabilities().await?.etag {
        return write.send(client, id, None).await;
    }
    let version = match known {
        Some(version) => Some(version.to_owned()),
        None => client.user_version(id).await?,
    };
    match write.send(client, id, version.as_deref()).await {
        Err(e) if e.status() == Some(412) => {
            tracing::debug!(%id, "the user changed in the target since our last write; reading its version again");
            let fresh = client.user_version(id).await?;
            write.send(client, id, fresh.as_deref()).await
        }
        other => other,
    }
}

fn base_record(op: &PlannedOperation, existing: Option<&Record>) -> Record {
    match existing {
        Some(record) => Record {
            dn: op.dn.clone(),
            user_name: op.user_name.clone().or_else(|| record.user_name.clone()),
            ..record.clone()
        },
        None => Record {
            guid: op.guid.clone(),
            dn: op.dn.clone(),
            user_name: op.user_name.clone(),
            target_id: None,
            source_fingerprint: None,
            applied_image: None,
            target_version: None,
            status: RecordStatus::Failed,
            last_error: None,
            attempts: 0,
            retry_after_ms: None,
            failed_fingerprint: None,
        },
    }
}

/// The record as it stands once an operation settled, succeeded or not: no failure pending.
fn fresh_record(op: &PlannedOperation, existing: Option<&Record>) -> Record {
    Record {
        last_error: None,
        attempts: 0,
        retry_after_ms: None,
        failed_fingerprint: None,
        ..base_record(op, existing)
    }
}

fn status_of(image: &Value) -> RecordStatus {
    if image.get("active").and_then(Value::as_bool) == Some(false) {
        RecordStatus::Disabled
    } else {
        RecordStatus::Provisioned
    }
}

fn settled(
    op: &PlannedOperation,
    existing: Option<&Record>,
    written: Written,
    image: &Value,
) -> Applied {
    let record = Record {
        target_id: Some(written.target_id),
        target_version: written.version,
        source_fingerprint: op.fingerprint.clone(),
        applied_image: Some(image.clone()),
        status: status_of(image),
        ..fresh_record(op, existing)
    };
    Applied {
        took_over: written.took_over,
        unchecked_claim: written.unchecked,
        ..Applied::new(Some(record), written.outcome)
    }
}

fn deleted(op: &PlannedOperation, existing: Option<&Record>) -> Applied {
    // An entry still in the directory (disabled there) keeps a record saying it was deleted.
    let record = op.fingerprint.as_ref().map(|fingerprint| Record {
        target_id: None,
        source_fingerprint: Some(fingerprint.clone()),
        applied_image: None,
        target_version: None,
        status: RecordStatus::Deleted,
        ..fresh_record(op, existing)
    });
    Applied::new(record, Outcome::Deleted)
}

fn refreshed(op: &PlannedOperation, existing: Option<&Record>) -> Option<Record> {
    let record = existing?;
    let status = match (record.status, &record.applied_image) {
        (RecordStatus::Deleted, _) => RecordStatus::Deleted,
        (_, Some(image)) => status_of(image),
        (status, None) => status,
    };
    Some(Record {
        source_fingerprint: op.fingerprint.clone(),
        status,
        ..fresh_record(op, existing)
    })
}

fn failed(
    op: &PlannedOperation,
    existing: Option<&Record>,
    reason: String,
    target_gone: bool,
) -> Applied {
    let mut record = base_record(op, existing);
    record.status = RecordStatus::Failed;
    record.attempts = existing.map_or(0, |r| r.attempts).saturating_add(1);
    record.last_error = Some(reason.clone());
    // When to try again is the cycle's to say (it knows the time): see `schedule_retry`.
    record.failed_fingerprint = op.fingerprint.clone();
    if target_gone {
        record.target_id = None;
        record.applied_image = None;
        record.target_version = None;
    }
    Applied::new(Some(record), Outcome::Failed(reason))
}

/// [`failed`] because of `error`, noting whether the failure may be the target's, and whether
/// an earlier request of the operation went unanswered (`sent_unanswered`).
fn failed_by(
    op: &PlannedOperation,
    existing: Option<&Record>,
    error: &ScimClientError,
    target_gone: bool,
    sent_unanswered: bool,
) -> Applied {
    Applied {
        target_failure: TargetFailure::of(error, sent_unanswered),
        ..failed(op, existing, error.to_string(), target_gone)
    }
}
