//! SCIM targets for the tests: the bundled target run as its own process, and a reader of any
//! SCIM service, as a user checking it would read it.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use scimbridge_testkit::scim2_server::Scim2Server;
use serde_json::{Value, json};

use super::bin;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The bundled target run as `scimbridge target serve`, killed when dropped.
pub struct TargetProcess {
    child: Child,
    pub url: String,
    pub token: String,
}

impl TargetProcess {
    pub fn start(database: &Path, token: &str) -> TargetProcess {
        TargetProcess::start_with(database, token, &[])
    }

    /// With more options of `target serve` (faults on demand, latency).
    pub fn start_with(database: &Path, token: &str, args: &[&str]) -> TargetProcess {
        let mut all = vec!["--token", token];
        all.extend_from_slice(args);
        let mut target = TargetProcess::serve(database, &all);
        token.clone_into(&mut target.token);
        target
    }

    /// `target serve` with exactly these options: no token unless they give one.
    pub fn serve(database: &Path, args: &[&str]) -> TargetProcess {
        let (child, url) = serve_target(args, database);
        TargetProcess {
            child,
            url,
            token: String::new(),
        }
    }

    pub fn client(&self) -> ScimReader {
        ScimReader {
            url: self.url.clone(),
            token: self.token.clone(),
        }
    }

    /// Where the SCIM base URL's server answers: the address for a proxy in front of it.
    pub fn upstream(&self) -> String {
        self.url.strip_suffix("/scim/v2").unwrap().to_owned()
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scimbridge target serve` on a port the system picks (no race with other tests for a
/// free port) and returns it with its SCIM base URL, read from its first line of output.
pub fn serve_target(args: &[&str], database: &Path) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(bin())
        .args(["target", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--database")
        .arg(database)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep reading, so that later lines never meet a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    // "SCIM 2.0 target listening on http://127.0.0.1:PORT/scim/v2 (database …)"
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("unexpected first line from target serve: {line:?}"))
        .to_owned();
    (child, url)
}

/// The token quickstart made for its bundled target.
pub fn read_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("target-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A group as the target holds it: its display name and its members' user names, sorted.
pub type Group = (String, Vec<String>);

/// The groups a test expects, in the order [`ScimReader::groups`] gives them.
pub fn expected_groups(groups: &[(&str, &[&str])]) -> Vec<Group> {
    let mut expected: Vec<Group> = groups
        .iter()
        .map(|(name, members)| {
            let mut members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
            members.sort();
            ((*name).to_owned(), members)
        })
        .collect();
    expected.sort();
    expected
}

/// Reads a SCIM target the way a user would check it.
pub struct ScimReader {
    pub url: String,
    pub token: String,
}

/// PyPI's scim2-server taking `token`, and a reader of it.
pub fn scim2_server(token: &str) -> (Scim2Server, ScimReader) {
    let server = Scim2Server::start(token);
    let reader = ScimReader {
        url: server.url(),
        token: token.to_owned(),
    };
    (server, reader)
}

impl ScimReader {
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    /// Sends a write (`POST`, `PUT`, `PATCH`, `DELETE`) and returns the status and body, as an
    /// operator changing the target by hand would.
    pub fn send(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if !body.is_null() {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a user made by hand (`userName` and these attributes) and returns it.
    pub fn create_user(&self, user_name: &str, attributes: Value) -> Value {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": user_name});
        body.as_object_mut()
            .unwrap()
            .extend(attributes.as_object().cloned().unwrap_or_default());
        self.created("/Users", &body)
    }

    /// Creates a group made by hand with these members (target ids) and returns it.
    pub fn create_group(&self, name: &str, member_ids: &[&Value]) -> Value {
        let members: Vec<Value> = member_ids.iter().map(|id| json!({"value": id})).collect();
        let mut body = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
        if !members.is_empty() {
            body["members"] = Value::Array(members);
        }
        self.created("/Groups", &body)
    }

    fn created(&self, path: &str, body: &Value) -> Value {
        let (status, created) = self.send("POST", path, body);
        assert_eq!(status, 201, "{created}");
        created
    }

    /// Applies these PATCH operations to a user, by hand.
    pub fn patch_user(&self, id: &str, operations: Value) {
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
        let (status, answer) = self.send("PATCH", &format!("/Users/{id}"), &body);
        assert!((200..300).contains(&status), "{status} {answer}");
    }

    /// Deletes a user by hand and returns its id.
    pub fn delete_user(&self, user_name: &str) -> String {
        let id = self.id_of(user_name);
        let (status, body) = self.send("DELETE", &format!("/Users/{id}"), &Value::Null);
        assert_eq!(status, 204, "{body}");
        id
    }

    /// The target id of the user with this user name.
    pub fn id_of(&self, user_name: &str) -> String {
        self.user_by_name(user_name)
            .unwrap_or_else(|| panic!("no user {user_name}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Every resource of a list, page by page.
    fn all(&self, path: &str) -> Vec<Value> {
        let mut resources = Vec::new();
        loop {
            let start = (resources.len() + 1).to_string();
            let (status, page) = self.get(path, &[("startIndex", &start), ("count", "500")]);
            assert_eq!(status, 200, "{page}");
            let found = page["Resources"].as_array().cloned().unwrap_or_default();
            let total = page["totalResults"].as_u64().unwrap() as usize;
            if found.is_empty() {
                assert_eq!(resources.len(), total);
                return resources;
            }
            resources.extend(found);
            if resources.len() >= total {
                return resources;
            }
        }
    }

    /// Every user, page by page.
    pub fn users(&self) -> Vec<Value> {
        self.all("/Users")
    }

    /// Every user's userName, as listed (a name held twice is listed twice).
    pub fn user_names(&self) -> Vec<String> {
        self.users()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every group with its members' user names, sorted by name (a name held twice is listed
    /// twice). A member that is no user shows as `?` and its id, so no expected list matches
    /// it, while a test polling a running service can still wait for the engine to remove it
    /// (a deleted user stays a member until the group's own write, later in the cycle).
    pub fn groups(&self) -> Vec<Group> {
        // Groups first: a member written before this read is a user by the next one.
        let groups = self.all("/Groups");
        name_members(&groups, &self.users())
    }

    /// [`ScimReader::groups`], their members named from `users` (as read a moment ago).
    pub fn groups_of(&self, users: &[Value]) -> Vec<Group> {
        name_members(&self.all("/Groups"), users)
    }

    /// The members' user names of the group `name` (none when there is no such group).
    pub fn members(&self, name: &str) -> Vec<String> {
        let groups = self.groups();
        let mut named = groups.iter().filter(|(n, _)| n == name);
        let members = named.next().map(|(_, m)| m.clone()).unwrap_or_default();
        assert!(named.next().is_none(), "two groups named {name}");
        members
    }

    pub fn user_by_name(&self, user_name: &str) -> Option<Value> {
        let filter = format!("userName eq \"{user_name}\"");
        let (status, page) = self.get("/Users", &[("filter", &filter)]);
        assert_eq!(status, 200, "{page}");
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        assert!(
            resources.len() <= 1,
            "{user_name} exists {} times",
            resources.len()
        );
        resources.into_iter().next()
    }
}

/// Groups as read, with their members' user names looked up in `users`.
fn name_members(groups: &[Value], users: &[Value]) -> Vec<Group> {
    let names: HashMap<&str, &str> = users
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), u["userName"].as_str().unwrap()))
        .collect();
    let name_of = |id: &Value| {
        id.as_str()
            .and_then(|id| names.get(id))
            .map(|name| (*name).to_owned())
            .unwrap_or_else(|| format!("?{id}"))
    };
    let mut groups: Vec<Group> = groups
        .iter()
        .map(|g| {
            let mut members: Vec<String> = g["members"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| name_of(&m["value"]))
                .collect();
            members.sort();
            (g["displayName"].as_str().unwrap().to_owned(), members)
        })
        .collect();
    groups.sort();
    groups
}
