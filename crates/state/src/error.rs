//! Why a state store could not do what was asked.

/// Any error behind a [`StoreError`], kept whole.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Each variant keeps the error that caused it, whole, for callers that look further than the
/// message (`downcast_ref`).
///
/// The message includes the cause's: the cycle history, the service's log lines and the admin
/// API show an error by its message alone. For that reason the cause is not also the error's
/// `source()`, or the CLI, which prints the whole chain (`{:#}`), would say it twice (three
/// times for SQLite's errors, which repeat their own cause).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed: I/O, a locked or full database, a lost connection.
    #[error("state store: {context}: {cause}")]
    Backend {
        /// What the store was doing.
        context: String,
        cause: BoxError,
    },
    /// What the backend holds does not read back as the product's types.
    #[error("state store holds unreadable data ({context}): {cause}")]
    Corrupt {
        /// Where the data is.
        context: String,
        cause: BoxError,
    },
    /// A secret or image cannot be encrypted or decrypted with the key.
    #[error("state store secret: {cause}")]
    Secret { cause: BoxError },
}

impl StoreError {
    pub fn backend(context: impl Into<String>, cause: impl Into<BoxError>) -> StoreError {
        StoreError::Backend {
            context: context.into(),
            cause: cause.into(),
        }
    }

    pub fn corrupt(context: impl Into<String>, cause: impl Into<BoxError>) -> StoreError {
        StoreError::Corrupt {
            context: context.into(),
            cause: cause.into(),
        }
    }

    pub fn secret(cause: impl Into<BoxError>) -> StoreError {
        StoreError::Secret {
            cause: cause.into(),
        }
    }

    /// The error that caused this one.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match self {
            StoreError::Backend { cause, .. }
            | StoreError::Corrupt { cause, .. }
            | StoreError::Secret { cause } => cause.as_ref(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn the_message_names_the_cause_once_and_the_cause_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let error = StoreError::backend("saving a record", io);
        assert_eq!(error.to_string(), "state store: saving a record: disk full");
        assert!(error.source().is_none(), "told by the message already");
        let io = error.cause().downcast_ref::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);

        let error = StoreError::corrupt("records", "unknown record status gone");
        assert_eq!(
            error.to_string(),
            "state store holds unreadable data (records): unknown record status gone"
        );
    }
}
