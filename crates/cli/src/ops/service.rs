//! Asking the running service (`scimbridge serve`) to act now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scimbridge_model::{ChannelKey, Connection};
use tokio::sync::mpsc;

use crate::ops::Refused;
use crate::ops::channels::channel_keys;

/// Ways to start a channel's cycle now: its worker's "run now" sender, by channel.
pub type RunNow = Arc<Mutex<HashMap<ChannelKey, mpsc::Sender<()>>>>;

/// The channels told to run a cycle now, and those without a running worker.
pub struct Started {
    pub started: Vec<String>,
    pub not_running: Vec<String>,
}

/// Starts a cycle of each running channel of the connection now.
pub fn run_now(run_now: &RunNow, connection: &Connection) -> Result<Started, Refused> {
    let senders = run_now
        .lock()
        .map(|senders| senders.clone())
        .unwrap_or_default();
    let mut started = Vec::new();
    let mut not_running = Vec::new();
    for key in channel_keys(connection) {
        match senders.get(&key).filter(|sender| !sender.is_closed()) {
            Some(sender) => {
                // A full queue means a run is already due.
                let _ = sender.try_send(());
                started.push(key.channel);
            }
            None => not_running.push(key.channel),
        }
    }
    if started.is_empty() {
        return Err(Refused::Conflict(format!(
            "connection \"{}\" has no running channel (is it active?)",
            connection.name
        )));
    }
    Ok(Started {
        started,
        not_running,
    })
}
