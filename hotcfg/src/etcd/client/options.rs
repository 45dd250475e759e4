//! [`EtcdOptions`]: the client's timeouts and response limit; the endpoint list format.

use std::time::Duration;

/// Timeouts of an [`EtcdClient`](super::EtcdClient).
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
    /// [`EtcdError::TooLarge`](super::EtcdError::TooLarge).
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
