//! A small synchronous etcd client with its own runtime: what the source, the follower, the status
//! reporter and the operator commands need, with bounded waits and readable errors.
//!
//! `mod.rs` holds the client and its runtime; `options.rs` its timeouts and limits; `kv.rs` the
//! key-value calls (sync for users, async for the follower and reporter); `connection.rs` the
//! lazy connection and the bounded call; `error.rs` what can go wrong and how a client error is
//! classified; `security.rs` TLS and user/password.

mod connection;
mod error;
mod kv;
mod options;
mod security;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use etcd_client::Client;
use tokio::runtime::Runtime;

pub use error::EtcdError;
pub use kv::{Entry, Listing, Swap};
pub use options::{split_endpoints, EtcdOptions, DEFAULT_MAX_RESPONSE_BYTES};
pub use security::{EtcdSecurity, EtcdTls};

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
    security: EtcdSecurity,
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
            .field("security", &self.inner.security)
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
        Self::with_security(endpoints, options, EtcdSecurity::new())
    }

    /// A client of a secured etcd: these endpoints and timeouts, with TLS and/or a user
    /// ([`EtcdSecurity`]). An endpoint whose scheme contradicts the TLS setting (`http://` with
    /// TLS, `https://` without) is refused here, before anything connects.
    pub fn with_security<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        options: EtcdOptions,
        security: EtcdSecurity,
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
            security.check_endpoint(endpoint)?;
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
                security,
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
}
