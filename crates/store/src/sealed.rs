//! Encryption at rest as a layer in front of any backend.
//!
//! [`Sealed`] encrypts the literal secrets of data stores and connections, and the image last
//! applied to each user (it may hold a create-only first password, and it holds personal data),
//! before the backend sees them, and decrypts them on the way out. The backend keeps what it is
//! given, so every backend gets the same protection and the same format: `enc:v1:…` text bound
//! to its owner's name (see [`SecretKey`]).

use async_trait::async_trait;
use scimbridge_model::{
    AuditEvent, ChannelKey, Connection, CycleSummary, DataStore, EntryGuid, EpochMs, GroupRecord,
    HeldOperation, JournalEntry, Record, Secret, SyncState,
};
use scimbridge_state::{
    AdminAccount, AdminStore, ApiToken, AuditStore, ConfigurationStore, Cycle, GroupKey,
    HeldOperationStore, HistoryStore, JournalStore, MemberChange, RecordCounts, RecordKey,
    RecordStore, Saved, StoreError,
};
use serde_json::Value;

use crate::secrets::{SecretKey, SecretKeyError};

/// A backend whose secrets and images are encrypted with a key.
pub struct Sealed<B> {
    backend: B,
    key: SecretKey,
}

impl<B> Sealed<B> {
    pub fn new(backend: B, key: SecretKey) -> Sealed<B> {
        Sealed { backend, key }
    }

    /// The backend behind the layer, which sees only encrypted secrets and images.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

/// `SecretKey::encrypt` or `SecretKey::decrypt`: (key, text, owner) to text.
type Crypt = fn(&SecretKey, &str, &str) -> Result<String, SecretKeyError>;

/// A configuration object that holds secrets. Each secret is bound to the object's name, so
/// that a value copied to another object does not decrypt.
trait WithSecrets: Clone {
    fn owner(&self) -> String;
    fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret>;
}

impl WithSecrets for Connection {
    fn owner(&self) -> String {
        format!("connection/{}", self.name)
    }

    fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret> {
        Connection::secrets_mut(self)
    }
}

impl WithSecrets for DataStore {
    fn owner(&self) -> String {
        format!("data-store/{}", self.name)
    }

    fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret> {
        self.secret_fields_mut()
            .into_iter()
            .filter_map(|(_, secret)| secret.as_mut())
    }
}

/// Whose image a ciphertext is: a copied image does not decrypt on another record.
fn image_owner(channel: &ChannelKey, guid: &str) -> String {
    format!("record/{}/{}/{guid}", channel.connection, channel.channel)
}

impl<B> Sealed<B> {
    /// Replaces each literal secret of `object` by what `crypt` makes of it; references
    /// (`env:`, `file:`) are not secrets themselves.
    fn crypt<T: WithSecrets>(&self, mut object: T, crypt: Crypt) -> Result<T, StoreError> {
        let owner = object.owner();
        for secret in object.secrets_mut() {
            if let Secret::Literal(value) = secret {
                *value = crypt(&self.key, value, &owner).map_err(StoreError::secret)?;
            }
        }
        Ok(object)
    }

    fn seal_secrets<T: WithSecrets>(&self, object: &T) -> Result<T, StoreError> {
        self.crypt(object.clone(), SecretKey::encrypt)
    }

    fn open_secrets<T: WithSecrets>(&self, object: T) -> Result<T, StoreError> {
        self.crypt(object, SecretKey::decrypt)
    }

    /// `object` sealed for the backend, unless it is the one `stored` there. Compared in clear:
    /// each encryption makes another ciphertext of the same secret, so the backend cannot tell
    /// an unchanged object (it still tells a created one from an updated one).
    fn changed<T: WithSecrets + PartialEq>(
        &self,
        stored: Option<T>,
        object: &T,
    ) -> Result<Option<T>, StoreError> {
        match stored.map(|s| self.open_secrets(s)).transpose()? {
            Some(stored) if stored == *object => Ok(None),
            _ => self.seal_secrets(object).map(Some),
        }
    }

    /// The image as the backend keeps it: a string, its JSON encrypted.
    /// The record as stored: its image sealed.
    fn seal_record(&self, channel: &ChannelKey, record: &Record) -> Result<Record, StoreError> {
        let image = record
            .applied_image
            .as_ref()
            .map(|image| self.seal_image(channel, &record.guid, image))
            .transpose()?;
        Ok(Record {
            applied_image: image,
            ..record.clone()
        })
    }

    fn seal_image(
        &self,
        channel: &ChannelKey,
        guid: &str,
        image: &Value,
    ) -> Result<Value, StoreError> {
        let sealed = self
            .key
            .encrypt(&image.to_string(), &image_owner(channel, guid))
            .map_err(StoreError::secret)?;
        Ok(Value::String(sealed))
    }

    fn open_image(
        &self,
        channel: &ChannelKey,
        guid: &str,
        image: Value,
    ) -> Result<Value, StoreError> {
        match image {
            Value::String(sealed) => {
                let text = self
                    .key
                    .decrypt(&sealed, &image_owner(channel, guid))
                    .map_err(StoreError::secret)?;
                serde_json::from_str(&text).map_err(|e| StoreError::corrupt("records", e))
            }
            // Images written before they were encrypted are plain JSON.
            plain => Ok(plain),
        }
    }

    fn open_records(
        &self,
        channel: &ChannelKey,
        records: Vec<Record>,
    ) -> Result<Vec<Record>, StoreError> {
        records
            .into_iter()
            .map(|mut record| {
                let image = record.applied_image.take();
                record.applied_image = image
                    .map(|image| self.open_image(channel, &record.guid, image))
                    .transpose()?;
                Ok(record)
            })
            .collect()
    }
}

#[async_trait]
impl<B: ConfigurationStore> ConfigurationStore for Sealed<B> {
    async fn save_data_store(&self, data_store: &DataStore) -> Result<Saved, StoreError> {
        let stored = self.backend.data_stores().await?;
        let stored = stored.into_iter().find(|s| s.name == data_store.name);
        match self.changed(stored, data_store)? {
            Some(sealed) => self.backend.save_data_store(&sealed).await,
            None => Ok(Saved::Unchanged),
        }
    }

    async fn data_stores(&self) -> Result<Vec<DataStore>, StoreError> {
        let stored = self.backend.data_stores().await?;
        stored.into_iter().map(|d| self.open_secrets(d)).collect()
    }

    async fn save_connection(&self, connection: &Connection) -> Result<Saved, StoreError> {
        let stored = self.backend.connection(&connection.name).await?;
        match self.changed(stored, connection)? {
            Some(sealed) => self.backend.save_connection(&sealed).await,
            None => Ok(Saved::Unchanged),
        }
    }

    async fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let stored = self.backend.connections().await?;
        stored.into_iter().map(|c| self.open_secrets(c)).collect()
    }

    async fn connection(&self, name: &str) -> Result<Option<Connection>, StoreError> {
        let stored = self.backend.connection(name).await?;
        stored.map(|c| self.open_secrets(c)).transpose()
    }

    async fn delete_connection(&self, name: &str) -> Result<bool, StoreError> {
        self.backend.delete_connection(name).await
    }

    async fn delete_data_store(&self, name: &str) -> Result<bool, StoreError> {
        self.backend.delete_data_store(name).await
    }
}

#[async_trait]
impl<B: RecordStore> RecordStore for Sealed<B> {
    async fn records(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        let stored = self.backend.records(channel).await?;
        self.open_records(channel, stored)
    }

    async fn record_heads(&self, channel: &ChannelKey) -> Result<Vec<Record>, StoreError> {
        // Heads come without their image: nothing to decrypt.
        self.backend.record_heads(channel).await
    }

    async fn record_heads_page(
        &self,
        channel: &ChannelKey,
        after: Option<&EntryGuid>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        self.backend.record_heads_page(channel, after, limit).await
    }

    async fn record_heads_with(
        &self,
        channel: &ChannelKey,
        key: RecordKey<'_>,
    ) -> Result<Vec<Record>, StoreError> {
        self.backend.record_heads_with(channel, key).await
    }

    async fn records_by_guid(
        &self,
        channel: &ChannelKey,
        guids: &[EntryGuid],
    ) -> Result<Vec<Record>, StoreError> {
        let stored = self.backend.records_by_guid(channel, guids).await?;
        self.open_records(channel, stored)
    }

    async fn save_record(&self, channel: &ChannelKey, record: &Record) -> Result<(), StoreError> {
        let sealed = self.seal_record(channel, record)?;
        self.backend.save_record(channel, &sealed).await
    }

    async fn save_records(
        &self,
        channel: &ChannelKey,
        records: &[Record],
    ) -> Result<(), StoreError> {
        let sealed = records
            .iter()
            .map(|record| self.seal_record(channel, record))
            .collect::<Result<Vec<Record>, StoreError>>()?;
        self.backend.save_records(channel, &sealed).await
    }

    async fn delete_record(
        &self,
        channel: &ChannelKey,
        guid: &EntryGuid,
    ) -> Result<(), StoreError> {
        self.backend.delete_record(channel, guid).await
    }

    async fn record_counts(&self, channel: &ChannelKey) -> Result<RecordCounts, StoreError> {
        self.backend.record_counts(channel).await
    }

    async fn group_records(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError> {
        self.backend.group_records(channel).await
    }

    async fn group_heads(&self, channel: &ChannelKey) -> Result<Vec<GroupRecord>, StoreError> {
        self.backend.group_heads(channel).await
    }

    async fn group_records_with(
        &self,
        channel: &ChannelKey,
        key: GroupKey<'_>,
    ) -> Result<Vec<GroupRecord>, StoreError> {
        self.backend.group_records_with(channel, key).await
    }

    async fn save_group_record(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
    ) -> Result<(), StoreError> {
        self.backend.save_group_record(channel, record).await
    }

    async fn save_group_change(
        &self,
        channel: &ChannelKey,
        record: &GroupRecord,
        change: MemberChange<'_>,
    ) -> Result<(), StoreError> {
        self.backend
            .save_group_change(channel, record, change)
            .await
    }

    async fn move_group_memberships(
        &self,
        channel: &ChannelKey,
        from: &EntryGuid,
        to: &EntryGuid,
    ) -> Result<(), StoreError> {
        self.backend.move_group_memberships(channel, from, to).await
    }

    async fn delete_group_record(
        &self,
        channel: &ChannelKey,
        guid: &EntryGuid,
    ) -> Result<(), StoreError> {
        self.backend.delete_group_record(channel, guid).await
    }

    async fn sync_state(&self, channel: &ChannelKey) -> Result<Option<SyncState>, StoreError> {
        self.backend.sync_state(channel).await
    }

    async fn save_sync_state(
        &self,
        channel: &ChannelKey,
        state: Option<&SyncState>,
    ) -> Result<(), StoreError> {
        self.backend.save_sync_state(channel, state).await
    }

    async fn forget_channel(&self, channel: &ChannelKey) -> Result<(), StoreError> {
        self.backend.forget_channel(channel).await
    }
}

/// Implements a role that holds nothing secret by handing each call to the backend.
macro_rules! pass_through {
    ($role:ident { $(fn $method:ident(&self $(, $arg:ident: $type:ty)*) -> $out:ty;)* }) => {
        #[async_trait]
        impl<B: $role> $role for Sealed<B> {
            $(
                async fn $method(&self $(, $arg: $type)*) -> Result<$out, StoreError> {
                    self.backend.$method($($arg),*).await
                }
            )*
        }
    };
}

pass_through!(HeldOperationStore {
    fn held_operations(&self, channel: &ChannelKey) -> Vec<HeldOperation>;
    fn save_held_operations(&self, channel: &ChannelKey, held: &[HeldOperation]) -> ();
});

pass_through!(JournalStore {
    fn journal_operations(&self, channel: &ChannelKey, entries: &[JournalEntry]) -> ();
    fn unsettled_operations(&self, channel: &ChannelKey) -> Vec<JournalEntry>;
    fn close_journal_entries(&self, channel: &ChannelKey, guids: &[EntryGuid]) -> ();
});

pass_through!(AuditStore {
    fn record_audit_events(&self, events: &[AuditEvent]) -> ();
    fn audit_events_of(&self, who: &str, limit: u32) -> Vec<AuditEvent>;
});

pass_through!(AdminStore {
    fn admin_account(&self) -> Option<AdminAccount>;
    fn save_admin_account(&self, account: &AdminAccount) -> ();
    fn api_tokens(&self) -> Vec<ApiToken>;
    fn save_api_token(&self, token: &ApiToken) -> ();
    fn delete_api_token(&self, name: &str) -> bool;
});

pass_through!(HistoryStore {
    fn begin_cycle(&self, channel: &ChannelKey, started_at_ms: EpochMs) -> i64;
    fn end_cycle(
        &self,
        cycle_id: i64,
        finished_at_ms: EpochMs,
        summary: &CycleSummary,
        error: Option<&str>
    ) -> ();
    fn cycles(&self, channel: &ChannelKey, limit: u32) -> Vec<Cycle>;
});
