//! A target user belongs to one record of a channel. Linking a user found in the target to a
//! second entry would let the two entries overwrite each other, and the first of them to leave
//! would deprovision the other's account: so a look-up that finds a user another entry owns
//! fails the operation instead.

use std::collections::HashMap;
use std::sync::Mutex;

use scimbridge_model::Record;

use super::ScimClientError;

/// Target id → the entry whose user it is, for one cycle: the records' links, and the users
/// the cycle creates or links as it goes.
#[derive(Debug, Default)]
pub struct Owners {
    by_target: Mutex<HashMap<String, Owner>>,
}

#[derive(Debug, Clone)]
struct Owner {
    guid: String,
    dn: String,
}

impl Owners {
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Owners {
        Owners::new(links(records))
    }

    /// From the links of [`links`].
    pub fn new(links: HashMap<String, (String, String)>) -> Owners {
        let by_target = links
            .into_iter()
            .map(|(target, (guid, dn))| (target, Owner { guid, dn }))
            .collect();
        Owners {
            by_target: Mutex::new(by_target),
        }
    }

    /// Claims the target user `target_id`, found by `identifier`, for the entry `guid`
    /// (`dn`): refused when another entry of the channel has it.
    pub fn claim(
        &self,
        target_id: &str,
        identifier: &str,
        guid: &str,
        dn: &str,
    ) -> Result<(), ScimClientError> {
        let Ok(mut owners) = self.by_target.lock() else {
            return Ok(());
        };
        match owners.get(target_id) {
            Some(owner) if owner.guid != guid => Err(ScimClientError::TargetUserTaken {
                identifier: identifier.to_owned(),
                target_id: target_id.to_owned(),
                owner: owner.dn.clone(),
            }),
            _ => {
                owners.insert(
                    target_id.to_owned(),
                    Owner {
                        guid: guid.to_owned(),
                        dn: dn.to_owned(),
                    },
                );
                Ok(())
            }
        }
    }
}

/// Target id → GUID and DN of the entry whose user it is, from the records.
pub fn links<'a>(
    records: impl IntoIterator<Item = &'a Record>,
) -> HashMap<String, (String, String)> {
    records
        .into_iter()
        .filter_map(|r| {
            let owner = (r.guid.clone(), r.dn.clone());
            r.target_id.clone().map(|t| (t, owner))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_target_user_is_claimed_by_one_entry_only() {
        let owners = Owners::default();
        owners.claim("t1", "ann", "g1", "uid=ann").unwrap();
        // The same entry again (a retry, a resumed create) is fine.
        owners.claim("t1", "ann", "g1", "uid=ann").unwrap();
        let refused = owners.claim("t1", "ANN", "g2", "uid=ann2").unwrap_err();
        let text = refused.to_string();
        assert!(text.contains("uid=ann") && text.contains("ANN"), "{text}");
        owners.claim("t2", "bob", "g2", "uid=bob").unwrap();
    }
}
