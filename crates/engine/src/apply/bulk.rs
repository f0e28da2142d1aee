//! Creating users with SCIM Bulk (RFC 7644 §3.7): one `or` filter looks a chunk of users up,
//! those found are linked one by one, the others are created in one Bulk request. Anything the
//! Bulk answer leaves unsure (a lost answer, a missing or duplicate result) falls back to the
//! one-user path, which looks the user up before creating it: never a duplicate.

use std::collections::HashMap;
use std::sync::Mutex;

use scimbridge_model::{
    EntryGuid, GroupMember, Operation, PlannedOperation, ProvisioningOptions, Record, TargetId,
};
use serde_json::{Value, json};

use super::{
    Applied, Outcome, Owners, ScimClient, Written, apply_operation, failed, failed_by, link_user,
    settled,
};

/// Bulk requests carry at most this many operations, fewer when the target says so.
pub const BULK_CHUNK: usize = 100;

/// How many creates go in one Bulk request: the target's `maxOperations` (when it says),
/// at most [`BULK_CHUNK`], and small enough for its `maxPayloadSize` with typical images.
pub fn chunk_size(max_operations: usize) -> usize {
    match max_operations {
        0 => BULK_CHUNK,
        n => n.min(BULK_CHUNK),
    }
}

/// Groups created (empty) before the users of the cycle, filled by the users' Bulk requests:
/// a PATCH per group whose member values are the `bulkId`s of users created in that request
/// (RFC 7644 §3.7.2), plus the ids of members created by earlier requests. A group's members
/// wait until `chunk_size` of them can go in one PATCH, so the target sees no more group writes
/// than with PATCH chunks after the users; whoever is still waiting at the end is added by the
/// group stage of the cycle.
#[derive(Debug)]
pub struct GroupRides {
    /// User GUID → the target ids of the groups it joins.
    groups_of_user: Mutex<HashMap<EntryGuid, Vec<TargetId>>>,
    chunk_size: usize,
    state: Mutex<RideState>,
}

#[derive(Debug, Default)]
struct RideState {
    /// Group id → members created by earlier requests, not in the group yet.
    waiting: HashMap<TargetId, Vec<GroupMember>>,
    /// Group id → members the target confirmed.
    confirmed: HashMap<TargetId, Vec<GroupMember>>,
}

/// One group's share of a Bulk request.
#[derive(Debug)]
struct Ride {
    group: TargetId,
    /// Members created by earlier requests (sent by id).
    earlier: Vec<GroupMember>,
    /// Indexes in the chunk of the users of this request (sent by `bulkId`).
    own: Vec<usize>,
    /// Whether a PATCH goes in this request (else the members wait).
    sent: bool,
}

impl GroupRides {
    pub fn new(groups_of_user: HashMap<EntryGuid, Vec<TargetId>>, chunk_size: usize) -> GroupRides {
        GroupRides {
            groups_of_user: Mutex::new(groups_of_user),
            chunk_size: chunk_size.max(1),
            state: Mutex::default(),
        }
    }

    /// Adds the users of later requests and their groups (a full read's next page, while the
    /// requests of the page before may still be going).
    pub fn add_users(&self, groups_of_user: HashMap<EntryGuid, Vec<TargetId>>) {
        if let Ok(mut users) = self.groups_of_user.lock() {
            users.extend(groups_of_user);
        }
    }

    /// Forgets the groups of users whose requests are over: those a Bulk request created were
    /// taken with it; these were linked, failed or not sent.
    pub fn forget_users<'g>(&self, guids: impl IntoIterator<Item = &'g EntryGuid>) {
        if let Ok(mut users) = self.groups_of_user.lock() {
            for guid in guids {
                users.remove(guid);
            }
        }
    }

    /// Group target id → members added by the Bulk requests.
    pub fn confirmed(&self) -> HashMap<TargetId, Vec<GroupMember>> {
        self.state
            .lock()
            .map(|s| s.confirmed.clone())
            .unwrap_or_default()
    }

    /// Group target id → members added by the Bulk requests since the last call.
    pub fn take_confirmed(&self) -> HashMap<TargetId, Vec<GroupMember>> {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.confirmed))
            .unwrap_or_default()
    }

    /// The groups of the batch's users, and which get a PATCH in this request.
    fn take(&self, chunk: &[(&PlannedOperation, Option<&Record>)], batch: &[usize]) -> Vec<Ride> {
        let mut rides: Vec<Ride> = Vec::new();
        let Ok(mut groups_of_user) = self.groups_of_user.lock() else {
            return Vec::new();
        };
        for &index in batch {
            // A user goes in one request: its groups are taken with it.
            let guid = chunk[index].0.guid.as_str();
            for group in groups_of_user.remove(guid).into_iter().flatten() {
                match rides.iter_mut().find(|r| r.group == group) {
                    Some(ride) => ride.own.push(index),
                    None => rides.push(Ride {
                        group,
                        earlier: Vec::new(),
                        own: vec![index],
                        sent: false,
                    }),
                }
            }
        }
        drop(groups_of_user);
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        for ride in &mut rides {
            let waiting = state.waiting.get(&ride.group).map_or(0, Vec::len);
            if waiting + ride.own.len() >= self.chunk_size {
                ride.earlier = state.waiting.remove(&ride.group).unwrap_or_default();
                ride.sent = true;
            }
        }
        rides
    }

    /// After the request: members of a PATCH the target accepted are confirmed; the others
    /// that exist now (created here or earlier) wait for a later PATCH.
    fn settle(
        &self,
        chunk: &[(&PlannedOperation, Option<&Record>)],
        rides: Vec<Ride>,
        answers: &HashMap<&str, &Value>,
    ) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        for (position, ride) in rides.into_iter().enumerate() {
            let created = ride.own.iter().filter_map(|&index| {
                match read_answer(answers.get(bulk_id(index).as_str())?) {
                    BulkResult::Created { id, .. } => Some(GroupMember {
                        guid: chunk[index].0.guid.clone(),
                        target_id: id.into(),
                    }),
                    _ => None,
                }
            });
            let members: Vec<GroupMember> = ride.earlier.into_iter().chain(created).collect();
            let patched = ride.sent
                && answers
                    .get(ride_id(position).as_str())
                    .is_some_and(|a| matches!(read_status(a), Some(200 | 204)));
            let list = if patched {
                state.confirmed.entry(ride.group).or_default()
            } else if ride.sent {
                // Refused (a member failed to be created, a target that will not take it): the
                // group stage adds them, one chunk per PATCH; sent again here, the list would
                // grow with every request.
                continue;
            } else {
                state.waiting.entry(ride.group).or_default()
            };
            list.extend(members);
        }
    }
}

fn ride_id(position: usize) -> String {
    format!("g{position}")
}

/// Creates these groups (GUID, display name), empty, with Bulk requests of at most
/// `max_operations`; returns GUID → target id of those the target created. The others are left
/// to the group stage of the cycle, which looks each up before creating it.
pub async fn create_empty_groups(
    client: &ScimClient,
    groups: &[(EntryGuid, String)],
    max_operations: usize,
) -> HashMap<EntryGuid, TargetId> {
    let mut created = HashMap::new();
    for batch in groups.chunks(chunk_size(max_operations)) {
        let operations: Vec<Value> = batch
            .iter()
            .map(|(guid, name)| {
                json!({"method": "POST", "path": client.groups_path(), "bulkId": guid, "data": {
                    "schemas": [scimbridge_scim::GROUP_SCHEMA], "displayName": name}})
            })
            .collect();
        let answers = match client.bulk(&operations).await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::debug!(error = %e, "bulk group creation failed; the group stage creates them");
                continue;
            }
        };
        for answer in &answers {
            if let (Some(guid), BulkResult::Created { id, .. }) = (
                answer.get("bulkId").and_then(Value::as_str),
                read_answer(answer),
            ) {
                created.insert(EntryGuid::from(guid), TargetId::from(id));
            }
        }
    }
    created
}

/// Applies a chunk of create operations; the results come back in the chunk's order. `None`:
/// not sent, because the target failed on an earlier user of the chunk for a reason that may be
/// its own (no connection, 5xx…): the cycle decides whether it is down, and a later cycle sends
/// these.
pub async fn create_users(
    client: &ScimClient,
    chunk: &[(&PlannedOperation, Option<&Record>)],
    options: &ProvisioningOptions,
    max_payload_size: usize,
    rides: Option<&GroupRides>,
    owners: &Owners<'_>,
) -> Vec<Option<Applied>> {
    let mut results: Vec<Option<Applied>> = vec![None; chunk.len()];
    let names: Vec<&str> = chunk
        .iter()
        .map(|(op, _)| op.user_name.as_deref().unwrap_or_default())
        .collect();
    let found = match client.find_users_by_user_name(&names).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, "bulk look-up failed; creating one user at a time");
            return one_by_one(client, chunk, options, owners).await;
        }
    };

    // Once the target fails for a reason that may be its own, the rest of the chunk waits.
    let mut target_failed = false;
    let mut to_create: Vec<usize> = Vec::new();
    for (index, (op, existing)) in chunk.iter().enumerate() {
        if target_failed {
            break;
        }
        let Operation::Create { image } = &op.operation else {
            let applied = apply_operation(client, op, *existing, options, owners).await;
            target_failed = applied.target_failure.is_some();
            results[index] = Some(applied);
            continue;
        };
        match found.get(&names[index].to_lowercase()) {
            Some(id) => {
                let took_over = match owners.claim(id, names[index], &op.guid, &op.dn).await {
                    Ok(took_over) => took_over,
                    Err(e) => {
                        results[index] = Some(failed_by(op, *existing, &e, false, false));
                        continue;
                    }
                };
                // Created by a cycle a crash interrupted: ours, whole image. Else linked.
                let (image, outcome) = if op.resumed_cycle.is_some() {
                    (image, Outcome::Created)
                } else {
                    (op.link_image(image), Outcome::Linked)
                };
                let applied = match link_user(client, id, image).await {
                    Ok(version) => settled(
                        op,
                        *existing,
                        Written {
                            target_id: id.clone().into(),
                            version,
                            outcome,
                            took_over,
                            unchecked: None,
                        },
                        image,
                    ),
                    Err(e) => failed_by(op, *existing, &e, false, false),
                };
                target_failed = applied.target_failure.is_some();
                results[index] = Some(applied);
            }
            None => to_create.push(index),
        }
    }

    for batch in payload_batches(chunk, &to_create, max_payload_size) {
        if target_failed {
            break;
        }
        let mut operations: Vec<Value> = batch
            .iter()
            .map(|&index| {
                let image = match &chunk[index].0.operation {
                    Operation::Create { image } => image.clone(),
                    _ => Value::Null,
                };
                json!({"method": "POST", "path": "/Users", "bulkId": bulk_id(index), "data": image})
            })
            .collect();
        let memberships = rides.map(|r| r.take(chunk, &batch)).unwrap_or_default();
        for (position, ride) in memberships.iter().enumerate().filter(|(_, r)| r.sent) {
            let value: Vec<Value> = ride
                .earlier
                .iter()
                .map(|m| json!({"value": m.target_id}))
                .chain(
                    ride.own
                        .iter()
                        .map(|&index| json!({"value": format!("bulkId:{}", bulk_id(index))})),
                )
                .collect();
            operations.push(json!({
                "method": "PATCH",
                "path": format!("{}/{}", client.groups_path(), ride.group),
                "bulkId": ride_id(position),
                "data": {
                    "schemas": [scimbridge_scim::PATCH_OP_SCHEMA],
                    "Operations": [{"op": "add", "path": "members", "value": value}]
                }
            }));
        }
        let answers = match client.bulk(&operations).await {
            Ok(answers) => answers,
            // The target may be down: these users fail in doubt (the request may have created
            // some), and the cycle asks whether it is.
            Err(e) if e.target_unavailable() => {
                for &index in &batch {
                    let (op, existing) = chunk[index];
                    results[index] = Some(failed_by(op, existing, &e, false, false));
                }
                target_failed = true;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "bulk request failed; creating these users one at a time");
                Vec::new()
            }
        };
        let by_bulk_id: HashMap<&str, &Value> = answers
            .iter()
            .filter_map(|a| a.get("bulkId").and_then(Value::as_str).map(|id| (id, a)))
            .collect();
        if let Some(rides) = rides {
            rides.settle(chunk, memberships, &by_bulk_id);
        }
        // The users created are claimed below: their owners asked of the store at once.
        let created: Vec<TargetId> = answers
            .iter()
            .filter_map(|answer| match read_answer(answer) {
                BulkResult::Created { id, .. } => Some(TargetId::from(id)),
                _ => None,
            })
            .collect();
        owners.look_up_all(&created).await;
        for &index in &batch {
            let (op, existing) = chunk[index];
            let Operation::Create { image } = &op.operation else {
                continue;
            };
            let applied = match by_bulk_id.get(bulk_id(index).as_str()) {
                Some(answer) => match read_answer(answer) {
                    BulkResult::Created { id, version } => {
                        // A target that matched the user to one it has (an upsert) gave us
                        // another entry's user: refused, as a look-up finding it would be.
                        match owners.claim(&id, op.label(), &op.guid, &op.dn).await {
                            Ok(took_over) => settled(
                                op,
                                existing,
                                Written {
                                    target_id: id.into(),
                                    version,
                                    outcome: Outcome::Created,
                                    took_over,
                                    unchecked: None,
                                },
                                image,
                            ),
                            Err(e) => failed_by(op, existing, &e, false, false),
                        }
                    }
                    BulkResult::Failed(reason) => failed(op, existing, reason, false),
                    // Exists already, or the answer is unclear: the one-user path looks it up.
                    BulkResult::Unsure if !target_failed => {
                        apply_operation(client, op, existing, options, owners).await
                    }
                    BulkResult::Unsure => continue,
                },
                None if !target_failed => {
                    apply_operation(client, op, existing, options, owners).await
                }
                None => continue,
            };
            target_failed |= applied.target_failure.is_some();
            results[index] = Some(applied);
        }
    }
    results
}

/// Applies the chunk's operations one at a time, until the target fails for a reason that may be
/// its own: the rest are not sent (`None`).
async fn one_by_one(
    client: &ScimClient,
    chunk: &[(&PlannedOperation, Option<&Record>)],
    options: &ProvisioningOptions,
    owners: &Owners<'_>,
) -> Vec<Option<Applied>> {
    let mut results = Vec::with_capacity(chunk.len());
    let mut target_failed = false;
    for (op, existing) in chunk {
        if target_failed {
            results.push(None);
            continue;
        }
        let applied = apply_operation(client, op, *existing, options, owners).await;
        target_failed = applied.target_failure.is_some();
        results.push(Some(applied));
    }
    results
}

fn bulk_id(index: usize) -> String {
    format!("u{index}")
}

/// Splits the creates so that each request stays under the target's `maxPayloadSize`
/// (0: no limit), with a margin for the request envelope.
fn payload_batches(
    chunk: &[(&PlannedOperation, Option<&Record>)],
    indexes: &[usize],
    max_payload_size: usize,
) -> Vec<Vec<usize>> {
    let budget = if max_payload_size == 0 {
        usize::MAX
    } else {
        max_payload_size.saturating_sub(512)
    };
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut size = 0;
    for &index in indexes {
        let image_size = match &chunk[index].0.operation {
            Operation::Create { image } => image.to_string().len() + 80,
            _ => 0,
        };
        if !current.is_empty() && size + image_size > budget {
            batches.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(index);
        size += image_size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[derive(Debug, PartialEq)]
enum BulkResult {
    Created { id: String, version: Option<String> },
    Failed(String),
    Unsure,
}

/// Reads one operation of a Bulk response: `status` is a number or a string (RFC 7644 shows
/// `"201"`), the id is in `location` or in `response.id`.
fn read_answer(answer: &Value) -> BulkResult {
    let status = read_status(answer);
    read_answer_with(answer, status)
}

fn read_status(answer: &Value) -> Option<u16> {
    match answer.get("status") {
        Some(Value::String(text)) => text.trim().parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        // RFC 7643 draft style: {"status": {"code": "201"}}.
        Some(Value::Object(o)) => o
            .get("code")
            .and_then(|c| {
                c.as_str()
                    .map(str::to_owned)
                    .or_else(|| c.as_u64().map(|n| n.to_string()))
            })
            .and_then(|c| c.parse().ok()),
        _ => None,
    }
}

fn read_answer_with(answer: &Value, status: Option<u16>) -> BulkResult {
    let detail = || {
        answer
            .pointer("/response/detail")
            .and_then(Value::as_str)
            .unwrap_or("no detail")
            .to_owned()
    };
    match status {
        Some(200 | 201) => {
            let id = answer
                .pointer("/response/id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    answer
                        .get("location")
                        .and_then(Value::as_str)
                        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
                        .filter(|id| !id.is_empty())
                        .map(str::to_owned)
                });
            match id {
                Some(id) => BulkResult::Created {
                    id,
                    version: answer
                        .get("version")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
                None => BulkResult::Unsure,
            }
        }
        // 409 (or a 400 saying so): exists; 5xx: maybe created. Both: look it up.
        Some(409) | None => BulkResult::Unsure,
        Some(status) if status >= 500 => BulkResult::Unsure,
        Some(400)
            if answer.pointer("/response/scimType").and_then(Value::as_str)
                == Some("uniqueness") =>
        {
            BulkResult::Unsure
        }
        Some(status) => {
            BulkResult::Failed(format!("bulk POST /Users: HTTP {status}: {}", detail()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_answers_are_read_in_every_shape() {
        assert_eq!(
            read_answer(&json!({"bulkId": "u1", "status": "201",
                "location": "https://x/scim/v2/Users/abc", "version": "W/\"1\""})),
            BulkResult::Created {
                id: "abc".into(),
                version: Some("W/\"1\"".into())
            }
        );
        assert_eq!(
            read_answer(&json!({"status": 201, "response": {"id": "def"}})),
            BulkResult::Created {
                id: "def".into(),
                version: None
            }
        );
        assert_eq!(
            read_answer(&json!({"status": {"code": "201"}, "location": "/Users/ghi/"})),
            BulkResult::Created {
                id: "ghi".into(),
                version: None
            }
        );
        assert_eq!(read_answer(&json!({"status": "409"})), BulkResult::Unsure);
        assert_eq!(read_answer(&json!({"status": "503"})), BulkResult::Unsure);
        assert_eq!(
            read_answer(&json!({"status": "400", "response": {"scimType": "uniqueness"}})),
            BulkResult::Unsure
        );
        assert_eq!(
            read_answer(
                &json!({"status": "400", "response": {"scimType": "invalidValue", "detail": "bad email"}})
            ),
            BulkResult::Failed("bulk POST /Users: HTTP 400: bad email".into())
        );
        assert_eq!(read_answer(&json!({"status": "201"})), BulkResult::Unsure);
    }

    fn create(guid: &str) -> PlannedOperation {
        PlannedOperation {
            guid: guid.into(),
            dn: format!("uid={guid},ou=people,dc=example,dc=com"),
            user_name: Some(guid.to_owned()),
            fingerprint: None,
            operation: Operation::Create { image: json!({}) },
            reason: String::new(),
            link_image: None,
            resumed_cycle: None,
        }
    }

    /// The answers of a Bulk request that created `created` (by index) and whose ride PATCHes
    /// got `patch` (by position).
    fn answers(created: &[usize], patch: &[(usize, &str)]) -> Vec<Value> {
        let users = created.iter().map(|&i| {
            json!({"bulkId": bulk_id(i), "status": "201", "location": format!("/Users/id-u{i}")})
        });
        let patches = patch
            .iter()
            .map(|(position, status)| json!({"bulkId": ride_id(*position), "status": status}));
        users.chain(patches).collect()
    }

    /// Across pages, members wait until a PATCH can carry a chunk, the confirmed ones are taken
    /// page by page, and members of a PATCH the target refused are left to the group stage
    /// rather than sent again with every later request.
    #[test]
    fn group_rides_go_across_pages_and_a_refused_patch_is_not_sent_again() {
        let staff = TargetId::from("staff");
        let rides = GroupRides::new(HashMap::new(), 2);
        let joins = |guids: &[&str]| -> HashMap<EntryGuid, Vec<TargetId>> {
            guids
                .iter()
                .map(|g| (EntryGuid::from(*g), vec![staff.clone()]))
                .collect()
        };
        let settle_page = |ops: &[PlannedOperation], created: &[usize], patch: &str| {
            let chunk: Vec<(&PlannedOperation, Option<&Record>)> =
                ops.iter().map(|op| (op, None)).collect();
            let batch: Vec<usize> = (0..chunk.len()).collect();
            let taken = rides.take(&chunk, &batch);
            let sent = taken.iter().any(|r| r.sent);
            let answers = answers(created, &[(0, patch)]);
            let by_id: HashMap<&str, &Value> = answers
                .iter()
                .filter_map(|a| Some((a.get("bulkId")?.as_str()?, a)))
                .collect();
            rides.settle(&chunk, taken, &by_id);
            sent
        };

        // Page one: a member alone waits.
        let page = [create("a")];
        rides.add_users(joins(&["a"]));
        assert!(!settle_page(&page, &[0], "200"));
        assert!(rides.take_confirmed().is_empty());
        // Page two: with the one waiting, a chunk goes, and both are confirmed.
        let page = [create("b")];
        rides.add_users(joins(&["b"]));
        assert!(settle_page(&page, &[0], "200"));
        let confirmed = rides.take_confirmed().remove(&staff).unwrap();
        let mut guids: Vec<&str> = confirmed.iter().map(|m| m.guid.as_str()).collect();
        guids.sort();
        assert_eq!(guids, ["a", "b"]);
        assert!(rides.take_confirmed().is_empty());
        // Page three: the PATCH is refused (one of the two was not created): nothing waits.
        let page = [create("c"), create("d")];
        rides.add_users(joins(&["c", "d"]));
        assert!(settle_page(&page, &[0], "409"));
        assert!(rides.take_confirmed().is_empty());
        // Page four: one new member alone waits again; nothing from page three is sent.
        let page = [create("e")];
        rides.add_users(joins(&["e"]));
        assert!(!settle_page(&page, &[0], "200"));
        let waiting = rides.state.lock().unwrap().waiting.remove(&staff).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].guid.as_str(), "e");
        // Every user taken went with its request; a user whose page is over without a Bulk
        // create (linked, failed) is forgotten with the page.
        assert!(rides.groups_of_user.lock().unwrap().is_empty());
        rides.add_users(joins(&["f"]));
        rides.forget_users([&EntryGuid::from("f")]);
        assert!(rides.groups_of_user.lock().unwrap().is_empty());
    }

    #[test]
    fn chunk_size_follows_the_target() {
        assert_eq!(chunk_size(0), BULK_CHUNK);
        assert_eq!(chunk_size(10), 10);
        assert_eq!(chunk_size(1000), BULK_CHUNK);
    }
}
