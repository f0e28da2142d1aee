//! Resolving secret references at the moment a secret is used.

use scimbridge_model::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (referenced as env:{0})")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret {0} is empty")]
    Empty(String),
}

/// Returns the secret's value: literal, from the environment, or from a file (one trailing
/// newline removed, as written by `echo`).
pub fn resolve(secret: &Secret) -> Result<String, SecretError> {
    let value = match secret {
        Secret::Literal(value) => value.clone(),
        Secret::Env(name) => {
            std::env::var(name).map_err(|_| SecretError::MissingEnv(name.clone()))?
        }
        Secret::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_owned()
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty(match secret {
            Secret::Literal(_) => "value".into(),
            other => other.to_config_text(),
        }));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_files_and_reports_missing_ones() {
        let dir = std::env::temp_dir().join(format!("scimbridge-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let secret = Secret::File(path.display().to_string());
        assert_eq!(resolve(&secret).unwrap(), "abc");
        std::fs::remove_file(&path).unwrap();
        let err = resolve(&secret).unwrap_err().to_string();
        assert!(err.contains("cannot read secret file"), "{err}");
        let err = resolve(&Secret::Env("SCIMBRIDGE_SURELY_UNSET_VAR".into())).unwrap_err();
        assert!(err.to_string().contains("SCIMBRIDGE_SURELY_UNSET_VAR"));
    }
}
