//! A plain SCIM load generator: sends the requests a first provisioning cycle sends (look-up,
//! create; or one look-up filter and one Bulk request per chunk; then each group created with
//! its members in chunks), with nothing else: no directory, no state store, no plan. The
//! benchmark compares the engine with it to show the engine's own cost.
//!
//! With --bulk, as the engine does: groups created empty in one Bulk request, then each Bulk
//! request of 100 users also adds them to their groups by bulkId.
//!
//! usage: scim-load --url URL --token TOKEN --plan PLAN.json [--threads N] [--bulk]
//! PLAN.json is the output of `scimbridge plan CONNECTION --json` before the first cycle.
//! Prints one JSON line: {"seconds", "requests", "users", "groups"}.

// A benchmark tool: any surprise should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};

const CHUNK: usize = 100;

struct Load {
    http: reqwest::Client,
    url: String,
    token: String,
    requests: AtomicU64,
    ids: Mutex<HashMap<String, String>>,
}

impl Load {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Value {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .header("Accept", "application/scim+json")
            .query(query);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: HTTP {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// One PATCH adding these member ids to the group.
    async fn add_members(&self, group: &str, ids: &[String]) {
        let value: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        self.send(
            reqwest::Method::PATCH,
            &format!("/Groups/{group}"),
            &[],
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": value}]
            })),
        )
        .await;
    }

    fn report(&self, started: Instant, users: usize, groups: usize) {
        println!(
            "{}",
            json!({
                "seconds": started.elapsed().as_secs_f64(),
                "requests": self.requests.load(Ordering::Relaxed),
                "users": users,
                "groups": groups,
            })
        );
    }

    fn remember(&self, guid: &str, id: &str) {
        self.ids
            .lock()
            .unwrap()
            .insert(guid.to_owned(), id.to_owned());
    }
}

fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let url = value("--url").expect("--url");
    let token = value("--token").expect("--token");
    let plan_path = value("--plan").expect("--plan");
    let threads: usize = value("--threads").map_or(1, |t| t.parse().expect("--threads N"));
    let bulk = args.iter().any(|a| a == "--bulk");
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).expect("plan file"))
            .expect("plan JSON");

    let mut creates: Vec<(String, String, Value)> = Vec::new();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for channel in plan.as_object().expect("plan object").values() {
        for op in channel["operations"].as_array().into_iter().flatten() {
            if op["type"] == "create" {
                creates.push((
                    op["guid"].as_str().unwrap().to_owned(),
                    op["user_name"].as_str().unwrap().to_owned(),
                    op["image"].clone(),
                ));
            }
        }
        for op in channel["group_operations"].as_array().into_iter().flatten() {
            if op["type"] == "create" {
                let members = op["pending_members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect();
                groups.push((op["display_name"].as_str().unwrap().to_owned(), members));
            }
        }
    }

    let load = Load {
        http: reqwest::Client::builder().build().unwrap(),
        url,
        token,
        requests: AtomicU64::new(0),
        ids: Mutex::new(HashMap::new()),
    };
    let started = Instant::now();
    load.send(reqwest::Method::GET, "/ServiceProviderConfig", &[], None)
        .await;

    // Group id → ids of members created but not yet added (bulk mode).
    let waiting: Mutex<HashMap<String, Vec<String>>> = Mutex::new(HashMap::new());
    if bulk {
        // As the engine does: each new group is looked up, the groups are created empty in
        // Bulk, then every Bulk request of users also adds them to their groups by bulkId.
        for (name, _) in &groups {
            let filter = format!("displayName eq {}", quote(name));
            load.send(
                reqwest::Method::GET,
                "/Groups",
                &[("filter", &filter), ("attributes", "id,displayName")],
                None,
            )
            .await;
        }
        let operations: Vec<Value> = groups
            .iter()
            .enumerate()
            .map(|(i, (name, _))| json!({"method": "POST", "path": "/Groups", "bulkId": format!("g{i}"),
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}}))
            .collect();
        let answer = load
            .send(
                reqwest::Method::POST,
                "/Bulk",
                &[],
                Some(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": operations
                })),
            )
            .await;
        let mut group_ids: HashMap<String, String> = HashMap::new();
        for result in answer["Operations"].as_array().into_iter().flatten() {
            let id = result["location"]
                .as_str()
                .and_then(|l| l.rsplit('/').next())
                .unwrap_or_default();
            group_ids.insert(
                result["bulkId"].as_str().unwrap_or_default().to_owned(),
                id.to_owned(),
            );
        }
        let mut groups_of_user: HashMap<&str, Vec<String>> = HashMap::new();
        for (i, (_, members)) in groups.iter().enumerate() {
            if let Some(id) = group_ids.get(&format!("g{i}")) {
                for member in members {
                    groups_of_user
                        .entry(member.as_str())
                        .or_default()
                        .push(id.clone());
                }
            }
        }
        let groups_of_user = &groups_of_user;
        let waiting = &waiting;
        let chunks: Vec<&[(String, String, Value)]> = creates.chunks(CHUNK).collect();
        stream::iter(chunks.into_iter().map(|chunk| {
            let load = &load;
            async move {
                let filter = chunk
                    .iter()
                    .map(|(_, name, _)| format!("userName eq {}", quote(name)))
                    .collect::<Vec<_>>()
                    .join(" or ");
                let count = chunk.len().to_string();
                let found = load
                    .send(reqwest::Method::GET, "/Users", &[("filter", &filter), ("attributes", "id,userName"), ("count", &count)], None)
                    .await;
                assert_eq!(found["totalResults"].as_u64(), Some(0), "the target is not empty");
                let mut operations: Vec<Value> = chunk
                    .iter()
                    .map(|(guid, _, image)| json!({"method": "POST", "path": "/Users", "bulkId": guid, "data": image}))
                    .collect();
                // As the engine does: a group's members go in one PATCH once CHUNK of them
                // exist (earlier ones by id, this request's by bulkId); the rest wait.
                let mut own: Vec<(String, Vec<String>)> = Vec::new();
                for (guid, _, _) in chunk.iter() {
                    for group in groups_of_user.get(guid.as_str()).into_iter().flatten() {
                        match own.iter_mut().find(|(g, _)| g == group) {
                            Some((_, members)) => members.push(guid.clone()),
                            None => own.push((group.clone(), vec![guid.clone()])),
                        }
                    }
                }
                let mut sent: Vec<(String, Vec<String>)> = Vec::new();
                {
                    let mut waiting = waiting.lock().unwrap();
                    for (i, (group, members)) in own.iter().enumerate() {
                        let earlier = waiting.get(group).map_or(0, Vec::len);
                        if earlier + members.len() < CHUNK {
                            continue;
                        }
                        let earlier = waiting.remove(group).unwrap_or_default();
                        let value: Vec<Value> = earlier
                            .iter()
                            .map(|id| json!({"value": id}))
                            .chain(members.iter().map(|guid| json!({"value": format!("bulkId:{guid}")})))
                            .collect();
                        operations.push(json!({"method": "PATCH", "path": format!("/Groups/{group}"), "bulkId": format!("p{i}"),
                            "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                     "Operations": [{"op": "add", "path": "members", "value": value}]}}));
                        sent.push((group.clone(), members.clone()));
                    }
                }
                let answer = load
                    .send(reqwest::Method::POST, "/Bulk", &[], Some(&json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                        "Operations": operations
                    })))
                    .await;
                let mut created: HashMap<String, String> = HashMap::new();
                for result in answer["Operations"].as_array().into_iter().flatten() {
                    if result["method"] == "POST" {
                        let id = result["location"].as_str().and_then(|l| l.rsplit('/').next()).unwrap_or_default();
                        load.remember(result["bulkId"].as_str().unwrap_or_default(), id);
                        created.insert(result["bulkId"].as_str().unwrap_or_default().to_owned(), id.to_owned());
                    }
                }
                let mut waiting = waiting.lock().unwrap();
                for (group, members) in own {
                    if sent.iter().any(|(g, _)| *g == group) {
                        continue;
                    }
                    let ids = members.iter().filter_map(|guid| created.get(guid).cloned());
                    waiting.entry(group).or_default().extend(ids);
                }
            }
        }))
        .buffer_unordered(threads)
        .collect::<Vec<()>>()
        .await;
    } else {
        stream::iter(creates.iter().map(|(guid, name, image)| {
            let load = &load;
            async move {
                let filter = format!("userName eq {}", quote(name));
                let found = load
                    .send(reqwest::Method::GET, "/Users", &[("filter", &filter)], None)
                    .await;
                assert_eq!(
                    found["totalResults"].as_u64(),
                    Some(0),
                    "the target is not empty"
                );
                let created = load
                    .send(reqwest::Method::POST, "/Users", &[], Some(image))
                    .await;
                load.remember(guid, created["id"].as_str().unwrap_or_default());
            }
        }))
        .buffer_unordered(threads)
        .collect::<Vec<()>>()
        .await;
    }

    if bulk {
        // What still waits is added by the group stage: one PATCH per group and 100 members.
        let leftovers: Vec<(String, Vec<String>)> = waiting
            .into_inner()
            .unwrap()
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .collect();
        stream::iter(leftovers.iter().map(|(group, members)| {
            let load = &load;
            async move {
                for chunk in members.chunks(CHUNK) {
                    load.add_members(group, chunk).await;
                }
            }
        }))
        .buffer_unordered(threads)
        .collect::<Vec<()>>()
        .await;
        load.report(started, creates.len(), groups.len());
        return;
    }
    stream::iter(groups.iter().map(|(name, members)| {
        let load = &load;
        async move {
            let filter = format!("displayName eq {}", quote(name));
            load.send(
                reqwest::Method::GET,
                "/Groups",
                &[("filter", &filter), ("attributes", "id,displayName")],
                None,
            )
            .await;
            let ids: Vec<String> = {
                let known = load.ids.lock().unwrap();
                members
                    .iter()
                    .filter_map(|guid| known.get(guid).cloned())
                    .collect()
            };
            let mut chunks = ids.chunks(CHUNK);
            let first: Vec<Value> = chunks
                .next()
                .unwrap_or_default()
                .iter()
                .map(|id| json!({"value": id}))
                .collect();
            let created = load
                .send(
                    reqwest::Method::POST,
                    "/Groups",
                    &[],
                    Some(&json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": name,
                        "members": first
                    })),
                )
                .await;
            let id = created["id"].as_str().unwrap_or_default().to_owned();
            for chunk in chunks {
                load.add_members(&id, chunk).await;
            }
        }
    }))
    .buffer_unordered(threads)
    .collect::<Vec<()>>()
    .await;

    load.report(started, creates.len(), groups.len());
}
