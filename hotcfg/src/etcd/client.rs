//! A small synchronous etcd client with its own runtime: what the source, the follower, the status
//! reporter and the operator commands need, with bounded waits and readable errors.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, GetOptions, KvClient,
    PutOptions, Txn, TxnOp, TxnOpResponse, WatchClient,
};
use tokio::runtime::Runtime;

/// Timeouts of an [`EtcdClient`].
///
/// ```
/// use std::time::Duration;
/// let options = hotcfg::etcd::EtcdOptions::default().request_timeout(Duration::from_secs(2));
/// assert_eq!(options.request, Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Longest wait for a TCP connection to an endpoint (default 2 s).
    pub connect: Duration,
    /// Longest wait for one request's answer (default 5 s). A watch is bounded by this until etcd
    /// confirms it; then it lasts as long as the connection.
    pub request: Duration,
    /// HTTP/2 keep-alive interval; a connection that does not answer a ping within the same time
    /// is treated as broken (default 5 s). This is how a silent network partition is noticed.
    pub keep_alive: Duration,
    /// Largest single response accepted from etcd (default [`DEFAULT_MAX_RESPONSE_BYTES`],
    /// 64 MiB; gRPC's own default of 4 MiB is too small). One value is at most etcd's
    /// `--max-request-bytes` (1.5 MiB by default); watches ask etcd for fragments of about that
    /// size, so a catch-up of any length fits; a prefix read carries every value under the
    /// prefix in one response, so this bounds a prefix's total size. A larger response is an
    /// [`EtcdError::TooLarge`].
    pub max_response: usize,
}

/// The default of [`EtcdOptions::max_response`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
            max_response: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl EtcdOptions {
    /// Sets [`EtcdOptions::connect`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect = timeout;
        self
    }

    /// Sets [`EtcdOptions::request`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request = timeout;
        self
    }

    /// Sets [`EtcdOptions::keep_alive`].
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// Sets [`EtcdOptions::max_response`] (at least 64 KiB).
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit.max(64 * 1024);
        self
    }
}

/// Something went wrong talking to etcd.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered (down, unreachable, or too slow): worth retrying later.
    #[error("cannot reach etcd at {endpoints}: {message}")]
    Unreachable {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What failed.
        message: String,
    },
    /// etcd answered with an error.
    #[error("etcd at {endpoints} refused to {operation}: {message}")]
    Refused {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What was asked (`get app/config`).
        operation: String,
        /// etcd's answer.
        message: String,
    },
    /// etcd answered with a response larger than [`EtcdOptions::max_response`]: nothing of it was
    /// read. Retrying the same request fails the same way.
    #[error(
        "etcd at {endpoints} answered {operation} with {message}, above this client's limit of \
         {limit} bytes (EtcdOptions::max_response)"
    )]
    TooLarge {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What was asked (`watch app/config`).
        operation: String,
        /// The client's limit in bytes.
        limit: usize,
        /// How large the response was (`a message of 5599531 bytes`).
        message: String,
    },
    /// The client cannot be set up (no endpoints, a malformed endpoint, no thread for its runtime).
    #[error("cannot set up an etcd client: {0}")]
    Setup(String),
}

impl EtcdError {
    /// `true` when etcd could not be reached (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EtcdError::Unreachable { .. })
    }

    /// `true` when etcd's answer was larger than [`EtcdOptions::max_response`].
    pub fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::TooLarge { .. })
    }
}

/// Splits a comma-separated endpoint list (`127.0.0.1:2379,http://10.0.0.2:2379`), dropping blanks.
///
/// ```
/// assert_eq!(
///     hotcfg::etcd::split_endpoints(" a:2379, ,http://b:2379 "),
///     vec!["a:2379".to_string(), "http://b:2379".to_string()]
/// );
/// ```
pub fn split_endpoints(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

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

/// A synchronous etcd (v3 API) client, usable from any thread, inside or outside an async runtime.
///
/// It runs its own small tokio runtime (one worker thread) and connects lazily: creating one never
/// fails because etcd is down; each call waits at most [`EtcdOptions::request`] and reports an
/// [`EtcdError`]. After a transport error the next call connects afresh. Clones share the
/// connection.
///
/// ```
/// use hotcfg::etcd::EtcdClient;
///
/// // Nothing listens on port 9: the client is created, the call fails with a clear error.
/// let client = EtcdClient::with_options(
///     ["127.0.0.1:9"],
///     hotcfg::etcd::EtcdOptions::default().request_timeout(std::time::Duration::from_millis(300)),
/// )?;
/// let err = client.get("app/config").unwrap_err();
/// assert!(err.is_unreachable(), "{err}");
/// assert!(err.to_string().starts_with("cannot reach etcd at 127.0.0.1:9"));
/// # Ok::<(), hotcfg::etcd::EtcdError>(())
/// ```
#[derive(Clone)]
pub struct EtcdClient {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<String>,
    options: EtcdOptions,
    runtime: Option<Runtime>,
    handle: tokio::runtime::Handle,
    client: tokio::sync::Mutex<Option<Client>>,
    /// Bumped on every new connection, so a stale failure does not drop a fresh client.
    epoch: Mutex<u64>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks, so dropping the last clone inside an async context is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoints", &self.inner.endpoints)
            .field("options", &self.inner.options)
            .finish()
    }
}

impl EtcdClient {
    /// A client of these endpoints (`host:port` or `http://host:port`) with default timeouts.
    pub fn new<E: Into<String>>(endpoints: impl IntoIterator<Item = E>) -> Result<Self, EtcdError> {
        Self::with_options(endpoints, EtcdOptions::default())
    }

    /// A client of these endpoints with these timeouts.
    pub fn with_options<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        options: EtcdOptions,
    ) -> Result<Self, EtcdError> {
        let endpoints: Vec<String> = endpoints
            .into_iter()
            .map(Into::into)
            .flat_map(|e| split_endpoints(&e))
            .collect();
        if endpoints.is_empty() {
            return Err(EtcdError::Setup("no etcd endpoint given".into()));
        }
        for endpoint in &endpoints {
            if endpoint.starts_with("https://") {
                return Err(EtcdError::Setup(format!(
                    "{endpoint}: TLS endpoints are not supported by this build; use http://"
                )));
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(8)
            .thread_name("hotcfg-etcd")
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Setup(format!("cannot start the etcd runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(EtcdClient {
            inner: Arc::new(Inner {
                endpoints,
                options,
                runtime: Some(runtime),
                handle,
                client: tokio::sync::Mutex::new(None),
                epoch: Mutex::new(0),
            }),
        })
    }

    /// The endpoints, as given.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// The timeouts.
    pub fn options(&self) -> EtcdOptions {
        self.inner.options
    }

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
        let this = self.clone();
        let key = key.to_string();
        let value = value.into();
        self.block_on(async move {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    expected,
                )])
                .and_then([TxnOp::put(key.clone(), value, None)])
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

    // ---- async internals, run on the client's runtime ----

    /// Runs `future` on the client's runtime and waits for it from any thread (never from a task
    /// of this runtime: the follower calls blocking code through `spawn_blocking`).
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, EtcdError>> + Send + 'static,
    ) -> Result<T, EtcdError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inner.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(EtcdError::Setup(
                "the etcd client's runtime has stopped".into(),
            ))
        })
    }

    /// Spawns a task on the client's runtime.
    pub(crate) fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.handle.spawn(future)
    }

    pub(crate) fn endpoint_list(&self) -> String {
        self.inner.endpoints.join(",")
    }

    pub(crate) fn unreachable(&self, message: impl Into<String>) -> EtcdError {
        EtcdError::Unreachable {
            endpoints: self.endpoint_list(),
            message: message.into(),
        }
    }

    /// The connected client, connecting when there is none.
    async fn connected(&self) -> Result<(Client, u64), EtcdError> {
        let mut slot = self.inner.client.lock().await;
        let epoch = *self
            .inner
            .epoch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok((client.clone(), epoch));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(self.inner.options.connect)
            .with_keep_alive(self.inner.options.keep_alive, self.inner.options.keep_alive)
            .with_keep_alive_while_idle(true);
        let connect = Client::connect(self.inner.endpoints.clone(), Some(options));
        let client = match tokio::time::timeout(self.inner.options.request, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(err)) => return Err(self.classify("connect", err)),
            Err(_) => {
                return Err(self.unreachable(format!(
                    "no answer within {:?} while connecting",
                    self.inner.options.request
                )))
            }
        };
        let mut epoch = self
            .inner
            .epoch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        *slot = Some(client.clone());
        Ok((client, *epoch))
    }

    /// Forgets the connection made in `epoch`, so the next call connects afresh.
    async fn reset(&self, epoch: u64) {
        let mut slot = self.inner.client.lock().await;
        let current = *self
            .inner
            .epoch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current == epoch {
            *slot = None;
        }
    }

    /// One request, bounded by the request timeout; transport failures reset the connection.
    pub(crate) async fn call<T, F, Fut>(&self, operation: &str, f: F) -> Result<T, EtcdError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let (client, epoch) = self.connected().await?;
        let timeout = self.inner.options.request;
        let error = match tokio::time::timeout(timeout, f(client)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => self.classify(operation, err),
            Err(_) => self.unreachable(format!("no answer within {timeout:?} to {operation}")),
        };
        if error.is_unreachable() {
            self.reset(epoch).await;
        }
        Err(error)
    }

    /// Turns a client error into an [`EtcdError`], telling "could not reach" from "refused" from
    /// "too large".
    pub(crate) fn classify(&self, operation: &str, err: etcd_client::Error) -> EtcdError {
        use etcd_client::Error as E;
        if let E::GRpcStatus(status) = &err {
            if i32::from(status.code()) == grpc_code::OUT_OF_RANGE {
                if let Some(size) = oversized_message(status.message()) {
                    return EtcdError::TooLarge {
                        endpoints: self.endpoint_list(),
                        operation: operation.to_string(),
                        limit: self.inner.options.max_response,
                        message: format!("a message of {size} bytes"),
                    };
                }
            }
        }
        let unreachable = match &err {
            E::TransportError(_) | E::IoError(_) | E::WatchError(_) | E::EndpointError(_) => true,
            E::GRpcStatus(status) => {
                let code = i32::from(status.code());
                matches!(
                    code,
                    grpc_code::CANCELLED | grpc_code::DEADLINE_EXCEEDED | grpc_code::UNAVAILABLE
                ) || code == grpc_code::UNKNOWN && status.message().contains("transport")
                    // A status made by the client from a broken connection (h2, io) carries that
                    // error as its source; one sent by etcd does not.
                    || std::error::Error::source(status).is_some()
            }
            E::LeaseKeepAliveError(_) => true,
            _ => false,
        };
        let mut message = match &err {
            E::GRpcStatus(status) if !status.message().is_empty() => status.message().to_string(),
            other => other.to_string(),
        };
        // Transport errors say "tcp connect error"; the cause ("Connection refused") is below.
        let mut cause = std::error::Error::source(&err);
        if let E::GRpcStatus(status) = &err {
            cause = std::error::Error::source(status);
        }
        while let Some(inner) = cause {
            let text = inner.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            cause = inner.source();
        }
        if unreachable {
            self.unreachable(format!("{operation}: {message}"))
        } else {
            EtcdError::Refused {
                endpoints: self.endpoint_list(),
                operation: operation.to_string(),
                message,
            }
        }
    }

    /// A watch client that accepts responses up to [`EtcdOptions::max_response`].
    pub(crate) fn watcher(&self, client: &Client) -> WatchClient {
        client
            .watch_client()
            .max_decoding_message_size(self.inner.options.max_response)
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
        let mut entries = Vec::with_capacity(response.kvs().len());
        for kv in response.kvs() {
            entries.push(Entry {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                value: kv.value().to_vec(),
                mod_revision: kv.mod_revision(),
            });
        }
        Ok(Listing { entries, revision })
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

    /// A raw client for streaming calls (watch, lease keep-alive), and its connection epoch.
    pub(crate) async fn raw(&self) -> Result<(Client, u64), EtcdError> {
        self.connected().await
    }

    /// Drops the connection of `epoch` after a streaming call failed.
    pub(crate) async fn forget(&self, epoch: u64) {
        self.reset(epoch).await;
    }
}

/// A key-value client that accepts responses up to `limit` bytes.
fn kv_client(client: &Client, limit: usize) -> KvClient {
    client.kv_client().max_decoding_message_size(limit)
}

/// gRPC status codes (the protocol's numbers), without depending on tonic directly.
mod grpc_code {
    pub const CANCELLED: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const OUT_OF_RANGE: i32 = 11;
    pub const UNAVAILABLE: i32 = 14;
}

/// The size in tonic's "decoded message length too large: found N bytes, ..." message.
fn oversized_message(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("message length too large: found ")?;
    rest.split_once(' ')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_above_the_limit_is_too_large_not_refused_nor_unreachable() {
        let client = EtcdClient::with_options(
            ["127.0.0.1:9"],
            EtcdOptions::default().max_response_bytes(4_194_304),
        )
        .unwrap();
        let status = etcd_client::Error::GRpcStatus(tonic::Status::out_of_range(
            "Error, decoded message length too large: found 5599531 bytes, the limit is: \
             4194304 bytes",
        ));
        let err = client.classify("watch app/config", status);
        assert!(err.is_too_large() && !err.is_unreachable(), "{err:?}");
        assert_eq!(
            err.to_string(),
            "etcd at 127.0.0.1:9 answered watch app/config with a message of 5599531 bytes, \
             above this client's limit of 4194304 bytes (EtcdOptions::max_response)"
        );
        // Another out-of-range answer is etcd's own refusal.
        let other = etcd_client::Error::GRpcStatus(tonic::Status::out_of_range("bad range"));
        assert!(matches!(
            client.classify("get k", other),
            EtcdError::Refused { .. }
        ));
        assert_eq!(oversized_message("message length too large: found x"), None);
    }

    #[test]
    fn a_status_made_from_a_broken_connection_is_unreachable() {
        let client = EtcdClient::new(["127.0.0.1:9"]).unwrap();
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let broken = tonic::Status::from_error(Box::new(io));
        let err = client.classify("watch k", etcd_client::Error::GRpcStatus(broken));
        assert!(err.is_unreachable(), "{err:?}");
        let sent = tonic::Status::permission_denied("no");
        assert!(!client
            .classify("watch k", etcd_client::Error::GRpcStatus(sent))
            .is_unreachable());
        assert_eq!(
            EtcdOptions::default().max_response,
            DEFAULT_MAX_RESPONSE_BYTES
        );
    }
}
