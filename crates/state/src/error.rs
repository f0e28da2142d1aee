//! Why a state store could not do what was asked.

/// Any error behind a [`StoreError`], kept whole.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Each variant keeps the error that caused it as its `source()`, whole, for callers that look
/// further than the message (`downcast_ref`). The message says what the store was doing; the
/// whole chain reads with [`full_message`] (or anyhow's `{:#}`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed: I/O, a locked or full database, a lost connection.
    #[error("state store: {context}")]
    Backend {
        /// What the store was doing.
        context: String,
        #[source]
        cause: BoxError,
    },
    /// What the backend holds does not read back as the product's types.
    #[error("state store holds unreadable data ({context})")]
    Corrupt {
        /// Where the data is.
        context: String,
        #[source]
        cause: BoxError,
    },
    /// A secret or image cannot be encrypted or decrypted with the key.
    #[error("state store secret")]
    Secret {
        #[source]
        cause: BoxError,
    },
}

/// An error with its causes, for a log line, the cycle history or an API answer: each cause's
/// message once, after its context (`state store: saving a record: disk full`).
pub fn full_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their own cause in their message: say it once.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
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
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn the_cause_is_the_source_and_the_full_message_names_it_once() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let error = StoreError::backend("saving a record", io);
        assert_eq!(error.to_string(), "state store: saving a record");
        assert_eq!(
            full_message(&error),
            "state store: saving a record: disk full"
        );
        let io = error
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(error.cause().to_string(), "disk full");

        let error = StoreError::corrupt("records", "unknown record status gone");
        assert_eq!(
            full_message(&error),
            "state store holds unreadable data (records): unknown record status gone"
        );
    }
}
