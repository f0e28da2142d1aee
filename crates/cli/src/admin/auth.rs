//! Who may call the admin API: the administrator (HTTP Basic, the password checked against its
//! Argon2id hash) or the holder of an API token (Bearer; only the token's SHA-256 is stored).
//! Failed attempts are limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use scimbridge_engine::state::Store;
use sha2::{Digest, Sha256};

/// Failed attempts allowed per client address within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow!("password salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow!("cannot hash the password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new API token: shown once, stored as its hash.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("sbt_{}", hex::encode(bytes))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Administrator(String),
    Token(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, or wrong ones.
    Unauthenticated,
    /// Too many failed attempts from this address: wait this long.
    TooManyAttempts(Duration),
}

/// Failed attempts per client address.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

impl Attempts {
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    pub fn failed(&self, client: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(client).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= FAILURE_WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    pub fn succeeded(&self, client: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&client);
        }
    }
}

/// Checks the `Authorization` header of a request from `client`.
pub async fn authenticate(
    store: &dyn Store,
    attempts: &Attempts,
    client: IpAddr,
    authorization: Option<&str>,
) -> Result<Caller, Refusal> {
    if let Some(wait) = attempts.blocked(client) {
        return Err(Refusal::TooManyAttempts(wait));
    }
    let caller = match authorization {
        Some(header) => check(store, header).await,
        None => None,
    };
    match caller {
        Some(caller) => {
            attempts.succeeded(client);
            Ok(caller)
        }
        None => {
            if authorization.is_some() {
                attempts.failed(client);
            }
            Err(Refusal::Unauthenticated)
        }
    }
}

async fn check(store: &dyn Store, header: &str) -> Option<Caller> {
    if let Some(token) = header.strip_prefix("Bearer ") {
        let hash = token_hash(token.trim());
        let tokens = store.api_tokens().await.ok()?;
        return tokens
            .into_iter()
            .find(|t| t.token_hash == hash)
            .map(|t| Caller::Token(t.name));
    }
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    let account = store.admin_account().await.ok()??;
    // Argon2 is slow on purpose: off the async threads.
    let hash = account.password_hash.clone();
    let password = password.to_owned();
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    (valid && username == account.username).then_some(Caller::Administrator(account.username))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn failures_block_an_address_for_a_while() {
        let attempts = Attempts::default();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(attempts.blocked(client), None);
            attempts.failed(client);
        }
        assert!(attempts.blocked(client).is_some());
        assert_eq!(attempts.blocked(other), None);
    }
}
