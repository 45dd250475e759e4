//! The lazy connection: made on first use, shared by clones, dropped after a transport failure
//! so the next call connects afresh; and the one bounded request every call goes through.

use std::future::Future;
use std::sync::PoisonError;

use etcd_client::{Client, ConnectOptions, WatchClient};

use super::{EtcdClient, EtcdError};

impl EtcdClient {
    /// The connected client, connecting when there is none.
    async fn connected(&self) -> Result<(Client, u64), EtcdError> {
        let mut slot = self.inner.client.lock().await;
        let epoch = self.epoch();
        if let Some(client) = slot.as_ref() {
            return Ok((client.clone(), epoch));
        }
        let options = self
            .inner
            .security
            .apply(ConnectOptions::new())
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
        if self.epoch() == epoch {
            *slot = None;
        }
    }

    /// The epoch of the connection in the slot (bumped by each new connection).
    fn epoch(&self) -> u64 {
        *self
            .inner
            .epoch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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

    /// A watch client that accepts responses up to [`EtcdOptions::max_response`].
    pub(crate) fn watcher(&self, client: &Client) -> WatchClient {
        client
            .watch_client()
            .max_decoding_message_size(self.inner.options.max_response)
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
