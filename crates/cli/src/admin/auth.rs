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

/// Password checks that may run at once: each Argon2 check takes about 19 MiB and tens of
/// milliseconds, so a flood of guesses must not take the machine.
const PARALLEL_VERIFICATIONS: usize = 4;

/// Attempts per client address, and the gate in front of password checks.
#[derive(Debug, Clone)]
pub struct Attempts {
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
    verifications: Arc<tokio::sync::Semaphore>,
}

impl Default for Attempts {
    fn default() -> Attempts {
        Attempts {
            failures: Arc::default(),
            verifications: Arc::new(tokio::sync::Semaphore::new(PARALLEL_VERIFICATIONS)),
        }
    }
}

impl Attempts {
    /// How long the address must still wait, if it used up its attempts.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Counts an attempt before its credentials are checked, so that guesses sent in parallel
    /// count at once; `Err(wait)` when the address used up its attempts.
    pub fn charge(&self, client: IpAddr) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(client).or_insert((0, Instant::now()));
        if entry.0 >= MAX_FAILURES {
            return Err(FAILURE_WINDOW.saturating_sub(entry.1.elapsed()));
        }
        entry.0 += 1;
        Ok(())
    }

    /// Good credentials clear the address's count.
    pub fn succeeded(&self, client: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&client);
        }
    }

    /// Checks a password against its hash, a few at a time, off the async threads. An unknown
    /// user is checked against a throw-away hash, so that timing does not tell user names.
    pub async fn verify_password(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.verifications.acquire().await else {
            return false;
        };
        let known = hash.is_some();
        let hash = hash.map_or_else(|| decoy_hash().to_owned(), str::to_owned);
        let password = password.to_owned();
        let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        known && valid
    }
}

/// A hash no password is checked against for real.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// Checks the `Authorization` header of a request from `client`.
pub async fn authenticate(
    store: &dyn Store,
    attempts: &Attempts,
    client: IpAddr,
    authorization: Option<&str>,
) -> Result<Caller, Refusal> {
    let Some(header) = authorization else {
        return Err(match attempts.blocked(client) {
            Some(wait) => Refusal::TooManyAttempts(wait),
            None => Refusal::Unauthenticated,
        });
    };
    attempts.charge(client).map_err(Refusal::TooManyAttempts)?;
    match check(store, attempts, header).await {
        Some(caller) => {
            attempts.succeeded(client);
            Ok(caller)
        }
        None => Err(Refusal::Unauthenticated),
    }
}

async fn check(store: &dyn Store, attempts: &Attempts, header: &str) -> Option<Caller> {
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
    let account = store.admin_account().await.ok()?;
    let hash = account
        .as_ref()
        .filter(|a| a.username == username)
        .map(|a| a.password_hash.as_str());
    let valid = attempts.verify_password(password, hash).await;
    valid
        .then(|| account.map(|a| Caller::Administrator(a.username)))
        .flatten()
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
        // Charged before the check: parallel guesses count at once.
        for _ in 0..MAX_FAILURES {
            assert_eq!(attempts.blocked(client), None);
            assert!(attempts.charge(client).is_ok());
        }
        assert!(attempts.blocked(client).is_some());
        assert!(attempts.charge(client).is_err());
        assert_eq!(attempts.blocked(other), None);
        attempts.succeeded(client);
        assert!(attempts.charge(client).is_ok());
    }
}
