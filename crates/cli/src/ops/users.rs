//! One user named the way a person names it (`sync --user`, `mapping test --entry`): a DN as
//! given, or the user name (any case) or entry GUID of a user the channel has provisioned.

use scimbridge_engine::state::{Store, StoreError};
use scimbridge_model::ChannelKey;

/// The DN `who` names in the channel; `None` when it is no DN and the channel knows no such
/// user.
pub async fn user_dn(
    store: &dyn Store,
    channel: &ChannelKey,
    who: &str,
) -> Result<Option<String>, StoreError> {
    if who.contains('=') {
        return Ok(Some(who.to_owned()));
    }
    Ok(store
        .record_heads(channel)
        .await?
        .into_iter()
        .find(|r| {
            r.guid == who
                || r.user_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(who))
        })
        .map(|r| r.dn))
}

/// What to tell a person whose `who` named nobody.
pub const WHO_FORMS: &str = "give its DN, or the user name or GUID of a provisioned user";
