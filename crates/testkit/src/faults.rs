//! A reverse proxy that injects faults on demand (`python/fault_proxy.py`) in front of a SCIM
//! server: answers with a status (429 with `Retry-After`, 5xx), dropped connections, delays
//! before or after the upstream acts. It counts the requests it receives.

use std::collections::BTreeMap;
use std::process::Child;

use serde_json::Value;

pub struct FaultProxy {
    child: Child,
    pub port: u16,
}

impl FaultProxy {
    /// `upstream` is scheme, host and port (`http://127.0.0.1:8080`); `rules` is the JSON list
    /// described in `fault_proxy.py`.
    pub fn start(upstream: &str, rules: &Value) -> FaultProxy {
        let port = crate::free_port();
        let child = crate::oauth::start_script(
            "fault_proxy.py",
            &[port.to_string(), upstream.to_owned(), rules.to_string()],
        );
        FaultProxy { child, port }
    }

    /// The proxy's base URL for a path of the upstream (`/scim/v2`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests received per `METHOD /path` (ids replaced by `{id}`), and `faults` injected.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let text = reqwest::blocking::get(self.url("/_proxy/stats"))
            .unwrap()
            .text()
            .unwrap();
        let stats: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
        stats
            .into_iter()
            .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
