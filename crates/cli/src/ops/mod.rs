//! The operations every front end shares, as cargo's `ops` are to its commands: the CLI's
//! commands, the admin API and the console each parse their input, call one of these, and show
//! the outcome their own way. An operation takes the state store (or the data directory) and
//! what it works on, and says what happened; none prints, none knows HTTP.

pub mod channels;
pub mod check;
pub mod configure;
pub mod delete;
pub mod held;
pub mod mapping;
pub mod plan;
pub mod service;
pub mod status;
pub mod users;

use std::fmt;

use scimbridge_engine::state::StoreError;

/// Why an operation was refused, in words every front end can show.
#[derive(Debug)]
pub enum Refused {
    /// No object of this kind (`connection`, `data store`, `channel`) has that name.
    NotFound { what: &'static str, name: String },
    /// The object is in the way of the operation: active, or in use. The text says how.
    Conflict(String),
    /// The state store failed.
    Store(StoreError),
}

impl Refused {
    pub fn not_found(what: &'static str, name: &str) -> Refused {
        Refused::NotFound {
            what,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NotFound { what, name } => write!(f, "no {what} named \"{name}\""),
            Refused::Conflict(reason) => f.write_str(reason),
            Refused::Store(error) => f.write_str(&scimbridge_engine::state::full_message(error)),
        }
    }
}

impl std::error::Error for Refused {}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Refused {
        Refused::Store(error)
    }
}
