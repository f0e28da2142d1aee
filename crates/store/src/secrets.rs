//! Encryption of literal secrets at rest: XChaCha20-Poly1305 with a 256-bit key.
//!
//! The key comes from `SCIMBRIDGE_SECRET_KEY` (64 hex digits) or from a key file created on first
//! use with mode 0600. Each value has a random 192-bit nonce; the associated data binds it to its
//! owner, so a ciphertext copied to another connection does not decrypt.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

pub const KEY_ENV: &str = "SCIMBRIDGE_SECRET_KEY";
const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("{KEY_ENV} must be 64 hexadecimal digits (32 bytes)")]
    BadEnv,
    #[error("secret key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot decrypt a stored secret: {0}")]
    Decrypt(String),
}

#[derive(Clone)]
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        SecretKey {
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
        }
    }

    /// The key from the environment when set, else from `key_file`, created when missing.
    pub fn load_or_create(key_file: &Path) -> Result<SecretKey, SecretKeyError> {
        if let Ok(text) = std::env::var(KEY_ENV) {
            return parse_hex_key(text.trim()).ok_or(SecretKeyError::BadEnv);
        }
        let file_error = |reason: String| SecretKeyError::File {
            path: key_file.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(key_file) {
            Ok(text) => parse_hex_key(text.trim())
                .ok_or_else(|| file_error("not 64 hexadecimal digits".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                write_private(key_file, &hex::encode(bytes))
                    .map_err(|e| file_error(e.to_string()))?;
                Ok(SecretKey::from_bytes(&bytes))
            }
            Err(e) => Err(file_error(e.to_string())),
        }
    }

    pub fn encrypt(&self, plaintext: &str, owner: &str) -> Result<String, SecretKeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| SecretKeyError::Decrypt("encryption failed".into()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{PREFIX}{}", STANDARD.encode(blob)))
    }

    pub fn decrypt(&self, stored: &str, owner: &str) -> Result<String, SecretKeyError> {
        let blob = stored
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(|| {
                SecretKeyError::Decrypt(format!("value of {owner} is not an encrypted secret"))
            })?;
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: owner.as_bytes() })
            .map_err(|_| {
                SecretKeyError::Decrypt(format!(
                    "secret of {owner} does not decrypt with this key (was {KEY_ENV} or the key file changed?)"
                ))
            })?;
        String::from_utf8(plaintext)
            .map_err(|_| SecretKeyError::Decrypt(format!("secret of {owner} is not UTF-8")))
    }
}

fn parse_hex_key(text: &str) -> Option<SecretKey> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(SecretKey::from_bytes(&bytes))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_the_owner() {
        let key = SecretKey::from_bytes(&[7; 32]);
        let stored = key.encrypt("s3cret", "connection/a").unwrap();
        assert!(stored.starts_with(PREFIX) && !stored.contains("s3cret"));
        assert_eq!(key.decrypt(&stored, "connection/a").unwrap(), "s3cret");
        assert!(key.decrypt(&stored, "connection/b").is_err());
        assert!(
            SecretKey::from_bytes(&[8; 32])
                .decrypt(&stored, "connection/a")
                .is_err()
        );
        assert_ne!(
            stored,
            key.encrypt("s3cret", "connection/a").unwrap(),
            "nonces must differ"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = SecretKey::load_or_create(&path).unwrap();
        let stored = first.encrypt("x", "o").unwrap();
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.decrypt(&stored, "o").unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
