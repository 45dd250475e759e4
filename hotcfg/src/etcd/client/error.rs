//! [`EtcdError`], and how an `etcd_client` error becomes one: unreachable, refused or too large.

use super::EtcdClient;

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
    /// etcd answered with a response larger than [`EtcdOptions::max_response`](super::EtcdOptions::max_response): nothing of it was
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

    /// `true` when etcd's answer was larger than [`EtcdOptions::max_response`](super::EtcdOptions::max_response).
    pub fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::TooLarge { .. })
    }
}

impl EtcdClient {
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
        let without_certificate = self.inner.security.uses_tls()
            && !self.inner.security.presents_certificate()
            && [
                "connection closed",
                "broken pipe",
                "connection reset",
                "stream closed",
            ]
            .iter()
            .any(|closed| message.to_lowercase().contains(closed));
        if without_certificate {
            message = format!(
                "etcd closed the TLS connection: if it requires client certificates \
                 (--client-cert-auth), give one (--etcd-cert/--etcd-key, EtcdTls::identity) \
                 ({message})"
            );
        } else if let Some(hint) = hint(&message) {
            message = format!("{hint} ({message})");
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
}

/// What a TLS or authentication failure means, in the operator's terms: rustls and etcd name the
/// failed check, not its likely cause.
fn hint(message: &str) -> Option<&'static str> {
    let hints = [
        (
            "invalid peer certificate: UnknownIssuer",
            "etcd's certificate is not signed by the CA given (--etcd-ca, EtcdTls)",
        ),
        (
            "invalid peer certificate: NotValidForName",
            "etcd's certificate does not name this endpoint (EtcdTls::domain sets the name to check)",
        ),
        (
            "invalid peer certificate: Expired",
            "etcd's certificate has expired",
        ),
        (
            "invalid peer certificate",
            "etcd's certificate was not accepted",
        ),
        (
            "received fatal alert",
            "etcd refused this client's certificate: none was given, or its CA is not one etcd \
             trusts (--etcd-cert/--etcd-key, EtcdTls::identity)",
        ),
        (
            "user name is empty",
            "etcd requires authentication (--etcd-user, EtcdSecurity::user)",
        ),
        (
            "invalid user ID or password",
            "etcd refused the user name or password",
        ),
    ];
    hints
        .into_iter()
        .find(|(said, _)| message.contains(said))
        .map(|(_, meant)| meant)
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
    use crate::etcd::client::{EtcdOptions, DEFAULT_MAX_RESPONSE_BYTES};

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
