//! Key-value calls: the synchronous API users call, and the async reads and writes the follower
//! and the reporter run on the client's runtime.

use std::fmt;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, GetOptions, KvClient, PutOptions, Txn, TxnOp,
    TxnOpResponse,
};

use super::{EtcdClient, EtcdError};

/// One key and its value, as etcd stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The revision of the key's last modification.
    pub mod_revision: i64,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("bytes", &self.value.len())
            .field("mod_revision", &self.mod_revision)
            .finish()
    }
}

/// The keys of a range, in key order, as of one store revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The keys found.
    pub entries: Vec<Entry>,
    /// The store revision the listing reflects (every change up to it is included).
    pub revision: i64,
}

/// The outcome of [`EtcdClient::put_if_revision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Swap {
    /// The value was written; the key is now at this revision.
    Written(i64),
    /// The key was not at the expected revision: nothing was written. It is at `current` now
    /// (0 when the key does not exist).
    Conflict {
        /// The key's mod revision now (0: absent).
        current: i64,
    },
}

impl EtcdClient {
    /// The value of `key`, or `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, EtcdError> {
        let this = self.clone();
        let key = key.to_string();
        self.block_on(async move {
            let listing = this.range(&key, false).await?;
            Ok(listing.entries.into_iter().next())
        })
    }

    /// Every key under `prefix`, in key order, as of one revision.
    pub fn list(&self, prefix: &str) -> Result<Listing, EtcdError> {
        let this = self.clone();
        let prefix = prefix.to_string();
        self.block_on(async move { this.range(&prefix, true).await })
    }

    /// Writes `value` to `key`; returns the revision of the write.
    pub fn put(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<i64, EtcdError> {
        let this = self.clone();
        let key = key.to_string();
        let value = value.into();
        self.block_on(async move { this.put_async(&key, value, None).await })
    }

    /// Writes `value` to `key` only if the key's mod revision is still `expected` (0: only if the
    /// key does not exist): one etcd transaction, so two writers that read the same revision
    /// cannot both succeed.
    pub fn put_if_revision(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        expected: i64,
    ) -> Result<Swap, EtcdError> {
        self.put_if_revision_with(key, value.into(), expected, Vec::new())
    }

    /// [`put_if_revision`](EtcdClient::put_if_revision) that also writes the keys and values
    /// `also` in the same transaction, when it writes: they get the same mod revision.
    pub(crate) fn put_if_revision_with(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
        also: Vec<(String, Vec<u8>)>,
    ) -> Result<Swap, EtcdError> {
        let this = self.clone();
        let key = key.to_string();
        self.block_on(async move {
            let mut puts = vec![TxnOp::put(key.clone(), value, None)];
            puts.extend(also.into_iter().map(|(k, v)| TxnOp::put(k, v, None)));
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    expected,
                )])
                .and_then(puts)
                .or_else([TxnOp::get(key.clone(), None)]);
            let operation = format!("write {key} if at revision {expected}");
            let limit = this.inner.options.max_response;
            let response = this
                .call(&operation, move |client| async move {
                    kv_client(&client, limit).txn(txn).await
                })
                .await?;
            let revision = response.header().map_or(0, |h| h.revision());
            if response.succeeded() {
                return Ok(Swap::Written(revision));
            }
            let current = response
                .op_responses()
                .into_iter()
                .find_map(|op| match op {
                    TxnOpResponse::Get(get) => {
                        Some(get.kvs().first().map_or(0, |kv| kv.mod_revision()))
                    }
                    _ => None,
                })
                .unwrap_or(0);
            Ok(Swap::Conflict { current })
        })
    }

    /// The values of `keys` as of one store revision (`None` for an absent key), and that
    /// revision.
    pub(crate) fn get_all(&self, keys: &[String]) -> Result<(Vec<Option<Entry>>, i64), EtcdError> {
        let this = self.clone();
        let keys = keys.to_vec();
        self.block_on(async move { this.get_each(&keys).await })
    }

    /// One transaction: when every key of `expect` is at its mod revision (0: absent), applies
    /// `writes` (`Some(value)` puts, `None` deletes) and returns `Ok(revision)`; else writes
    /// nothing and returns `Err` with each expected key's mod revision now (0: absent), in order.
    pub(crate) fn write_if(
        &self,
        expect: &[(String, i64)],
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<Result<i64, Vec<i64>>, EtcdError> {
        let this = self.clone();
        let expect = expect.to_vec();
        self.block_on(async move {
            let compares: Vec<Compare> = expect
                .iter()
                .map(|(k, r)| Compare::mod_revision(k.clone(), CompareOp::Equal, *r))
                .collect();
            let ops: Vec<TxnOp> = writes
                .into_iter()
                .map(|(k, v)| match v {
                    Some(v) => TxnOp::put(k, v, None),
                    None => TxnOp::delete(k, None),
                })
                .collect();
            let reads: Vec<TxnOp> = expect
                .iter()
                .map(|(k, _)| TxnOp::get(k.clone(), None))
                .collect();
            let txn = Txn::new().when(compares).and_then(ops).or_else(reads);
            let operation = format!(
                "write if {}",
                expect.first().map_or("", |(k, _)| k.as_str())
            );
            let limit = this.inner.options.max_response;
            let response = this
                .call(&operation, move |client| async move {
                    kv_client(&client, limit).txn(txn).await
                })
                .await?;
            if response.succeeded() {
                return Ok(Ok(response.header().map_or(0, |h| h.revision())));
            }
            let current = response
                .op_responses()
                .into_iter()
                .map(|op| match op {
                    TxnOpResponse::Get(get) => get.kvs().first().map_or(0, |kv| kv.mod_revision()),
                    _ => 0,
                })
                .collect();
            Ok(Err(current))
        })
    }

    /// Deletes `key`; returns the revision of the deletion (the store revision when nothing was
    /// deleted).
    pub fn delete(&self, key: &str) -> Result<i64, EtcdError> {
        let this = self.clone();
        let key = key.to_string();
        self.block_on(async move {
            let operation = format!("delete {key}");
            let response = this
                .call(&operation, move |mut client| async move {
                    client.delete(key, None).await
                })
                .await?;
            Ok(response.header().map_or(0, |h| h.revision()))
        })
    }

    /// Discards the history before `revision` (maintenance; watches that start earlier are then
    /// refused as compacted). Waits until the compaction is applied.
    pub fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        let this = self.clone();
        self.block_on(async move {
            let operation = format!("compact at revision {revision}");
            this.call(&operation, move |mut client| async move {
                client
                    .compact(revision, Some(CompactionOptions::new().with_physical()))
                    .await
            })
            .await?;
            Ok(())
        })
    }

    /// The store's current revision.
    pub fn revision(&self) -> Result<i64, EtcdError> {
        let this = self.clone();
        self.block_on(async move {
            let response = this
                .call("read the store revision", |mut client| async move {
                    client
                        .get("\0", Some(GetOptions::new().with_count_only()))
                        .await
                })
                .await?;
            Ok(response.header().map_or(0, |h| h.revision()))
        })
    }

    pub(crate) async fn range(&self, key: &str, prefix: bool) -> Result<Listing, EtcdError> {
        let operation = if prefix {
            format!("list {key}*")
        } else {
            format!("get {key}")
        };
        let key = key.to_string();
        let limit = self.inner.options.max_response;
        let response = self
            .call(&operation, move |client| async move {
                let options = if prefix {
                    Some(GetOptions::new().with_prefix())
                } else {
                    None
                };
                kv_client(&client, limit).get(key, options).await
            })
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let entries = response.kvs().iter().map(entry_of).collect();
        Ok(Listing { entries, revision })
    }

    /// The values of `keys` as of one store revision (one transaction of reads), `None` for an
    /// absent key; and that store revision. Errors name the first key.
    pub(crate) async fn get_each(
        &self,
        keys: &[String],
    ) -> Result<(Vec<Option<Entry>>, i64), EtcdError> {
        let operation = format!("get {}", keys.first().map_or("", String::as_str));
        let reads: Vec<TxnOp> = keys.iter().map(|k| TxnOp::get(k.clone(), None)).collect();
        let limit = self.inner.options.max_response;
        let response = self
            .call(&operation, move |client| async move {
                kv_client(&client, limit)
                    .txn(Txn::new().and_then(reads))
                    .await
            })
            .await?;
        let revision = response.header().map_or(0, |h| h.revision());
        let entries = response
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(entry_of),
                _ => None,
            })
            .collect();
        Ok((entries, revision))
    }

    pub(crate) async fn put_async(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<i64>,
    ) -> Result<i64, EtcdError> {
        let operation = format!("write {key}");
        let key = key.to_string();
        let response = self
            .call(&operation, move |mut client| async move {
                let options = lease.map(|id| PutOptions::new().with_lease(id));
                client.put(key, value, options).await
            })
            .await?;
        Ok(response.header().map_or(0, |h| h.revision()))
    }
}

/// One key-value pair of an answer as an [`Entry`].
fn entry_of(kv: &etcd_client::KeyValue) -> Entry {
    Entry {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        mod_revision: kv.mod_revision(),
    }
}

/// A key-value client that accepts responses up to `limit` bytes.
fn kv_client(client: &Client, limit: usize) -> KvClient {
    client.kv_client().max_decoding_message_size(limit)
}
