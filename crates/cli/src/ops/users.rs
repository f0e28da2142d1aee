//! One user named the way a person names it (`sync --user`, `mapping test --entry`): a DN as
//! given, or the user name (any case) or entry GUID of a user the channel has provisioned.

use scimbridge_engine::state::{RecordKey, Store, StoreError};
use scimbridge_model::{ChannelKey, EntryGuid};

/// The DN `who` names in the channel; `None` when it is no DN and the channel knows no such
/// user. A GUID is looked for first, then a user name; both by key, not among every record.
pub async fn user_dn(
    store: &dyn Store,
    channel: &ChannelKey,
    who: &str,
) -> Result<Option<String>, StoreError> {
    if who.contains('=') {
        return Ok(Some(who.to_owned()));
    }
    let guid = [EntryGuid::from(who)];
    if let Some(record) = store
        .record_heads_with(channel, RecordKey::Guids(&guid))
        .await?
        .into_iter()
        .next()
    {
        return Ok(Some(record.dn));
    }
    let name = [who.to_owned()];
    Ok(store
        .record_heads_with(channel, RecordKey::UserNames(&name))
        .await?
        .into_iter()
        .next()
        .map(|r| r.dn))
}

/// What to tell a person whose `who` named nobody.
pub const WHO_FORMS: &str = "give its DN, or the user name or GUID of a provisioned user";
