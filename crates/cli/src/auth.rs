//! Who may call the admin API and sign on to the console: the administrator (HTTP Basic, the
//! password checked against its Argon2id hash) or the holder of an API token (Bearer; only the
//! token's SHA-256 is stored). Wrong passwords are limited per client address and user name,
//! across the API and the console; tokens are not limited. `scimbridge admin` sets both.

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

/// Wrong passwords allowed per client address and user name within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A longer user name is counted by its first bytes, so that huge names take no more memory.
const MAX_COUNTED_NAME: usize = 256;

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
    /// Too many wrong passwords for this user name from this address: wait this long.
    TooManyAttempts(Duration),
}

/// Password checks that may run at once: each Argon2 check takes about 19 MiB and tens of
/// milliseconds, so a flood of guesses must not take the machine.
const PARALLEL_VERIFICATIONS: usize = 4;

/// Wrong passwords are counted per client address *and* user name: wrong names sent from the
/// administrator's own machine do not lock the administrator out.
type Counted = (IpAddr, String);

/// Wrong passwords per client address and user name, and the gate in front of password checks.
/// Shared by the API's Basic authentication and the console's sign-on.
#[derive(Debug, Clone)]
pub struct Attempts {
    failures: Arc<Mutex<HashMap<Counted, (u32, Instant)>>>,
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
    /// Checks a password for a user name (`hash`: the administrator's, when the name is the
    /// administrator's). `Ok(valid)`, or `Err(wait)` when this address used up its attempts for
    /// this name. An unknown name is checked against a throw-away hash, so that timing does not
    /// tell user names.
    pub async fn check_password(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, Duration> {
        let counted = counted(client, username);
        // Refused at once, without queueing for a check.
        if let Some(wait) = self.blocked(&counted) {
            return Err(wait);
        }
        let Ok(_permit) = self.verifications.acquire().await else {
            return Ok(false);
        };
        // Counted before the check, so that guesses sent in parallel count at once; and only
        // once a check may run, so that new names enter the count no faster than Argon2 allows.
        self.charge(&counted)?;
        let known = hash.is_some();
        let hash = hash.map_or_else(|| decoy_hash().to_owned(), str::to_owned);
        let password = password.to_owned();
        let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false)
            && known;
        if valid {
            self.succeeded(&counted);
        }
        Ok(valid)
    }

    /// How long the address must still wait before trying this name again, if it must.
    fn blocked(&self, counted: &Counted) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(counted)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Counts an attempt; `Err(wait)` when the address used up its attempts for the name.
    fn charge(&self, counted: &Counted) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        let entry = failures
            .entry(counted.clone())
            .or_insert((0, Instant::now()));
        if entry.0 >= MAX_FAILURES {
            return Err(FAILURE_WINDOW.saturating_sub(entry.1.elapsed()));
        }
        entry.0 += 1;
        Ok(())
    }

    /// The right password clears the count of its address and name.
    fn succeeded(&self, counted: &Counted) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(counted);
        }
    }
}

fn counted(client: IpAddr, username: &str) -> Counted {
    let mut end = username.len().min(MAX_COUNTED_NAME);
    while !username.is_char_boundary(end) {
        end -= 1;
    }
    (client, username[..end].to_owned())
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
    let header = authorization.ok_or(Refusal::Unauthenticated)?;
    // A token is 256 random bits and costs one SHA-256 to check: it is checked before and apart
    // from the password count, so that a valid one always gets in (Prometheus, automation) and
    // a wrong one spends nobody's password attempts. Guessing one is hopeless.
    if let Some(token) = header.strip_prefix("Bearer ") {
        let hash = token_hash(token.trim());
        let tokens = store
            .api_tokens()
            .await
            .map_err(|_| Refusal::Unauthenticated)?;
        return tokens
            .into_iter()
            .find(|t| t.token_hash == hash)
            .map(|t| Caller::Token(t.name))
            .ok_or(Refusal::Unauthenticated);
    }
    let (username, password) = basic_credentials(header).ok_or(Refusal::Unauthenticated)?;
    let account = store
        .admin_account()
        .await
        .map_err(|_| Refusal::Unauthenticated)?;
    let hash = account
        .as_ref()
        .filter(|a| a.username == username)
        .map(|a| a.password_hash.as_str());
    match attempts
        .check_password(client, &username, &password, hash)
        .await
    {
        Ok(true) => account
            .map(|a| Caller::Administrator(a.username))
            .ok_or(Refusal::Unauthenticated),
        Ok(false) => Err(Refusal::Unauthenticated),
        Err(wait) => Err(Refusal::TooManyAttempts(wait)),
    }
}

/// The user name and password of a `Basic` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some((username.to_owned(), password.to_owned()))
}

#[cfg(test)]
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
    fn wrong_passwords_block_one_name_from_one_address() {
        let attempts = Attempts::default();
        let admin = counted("127.0.0.1".parse().unwrap(), "administrator");
        let other_name = counted("127.0.0.1".parse().unwrap(), "root");
        let other_address = counted("127.0.0.2".parse().unwrap(), "administrator");
        // Charged before the check: parallel guesses count at once.
        for _ in 0..MAX_FAILURES {
            assert_eq!(attempts.blocked(&other_name), None);
            assert!(attempts.charge(&other_name).is_ok());
        }
        assert!(attempts.blocked(&other_name).is_some());
        assert!(attempts.charge(&other_name).is_err());
        assert_eq!(attempts.blocked(&admin), None);
        assert_eq!(attempts.blocked(&other_address), None);
        attempts.succeeded(&other_name);
        assert!(attempts.charge(&other_name).is_ok());
    }

    #[test]
    fn huge_names_are_counted_by_their_first_bytes() {
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        let long = "é".repeat(MAX_COUNTED_NAME);
        let (_, name) = counted(client, &long);
        assert!(name.len() <= MAX_COUNTED_NAME && long.starts_with(&name));
        assert_eq!(counted(client, &long), counted(client, &format!("{long}x")));
    }

    #[tokio::test]
    async fn the_right_password_gets_in_after_wrong_ones_under_another_name() {
        let attempts = Attempts::default();
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        let hash = hash_password("correct horse").unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                attempts.check_password(client, "root", "guess", None).await,
                Ok(false)
            );
        }
        assert!(
            attempts
                .check_password(client, "root", "guess", None)
                .await
                .is_err()
        );
        assert_eq!(
            attempts
                .check_password(client, "administrator", "correct horse", Some(&hash))
                .await,
            Ok(true)
        );
    }
}
