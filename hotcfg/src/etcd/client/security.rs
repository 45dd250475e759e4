//! [`EtcdSecurity`]: how a client proves who it is to a secured etcd and checks that it talks to
//! the right server: TLS (the CA that signed etcd's certificate, optionally a client certificate)
//! and etcd's own user/password authentication.

use std::fmt;
use std::path::Path;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use super::EtcdError;
use crate::secret::Secret;

/// TLS to etcd: the CA certificate that signed the server's certificate, and optionally this
/// client's own certificate and key (for an etcd started with `--client-cert-auth`). PEM text.
///
/// This build trusts only the CA given, never the system's roots: etcd clusters run on private
/// CAs.
///
/// ```no_run
/// use hotcfg::etcd::{EtcdClient, EtcdOptions, EtcdSecurity, EtcdTls};
///
/// let tls = EtcdTls::from_files("ca.pem".as_ref(), Some(("node.pem".as_ref(), "node-key.pem".as_ref())))?;
/// let client = EtcdClient::with_security(
///     ["https://10.0.0.1:2379"],
///     EtcdOptions::default(),
///     EtcdSecurity::new().tls(tls),
/// )?;
/// # Ok::<(), hotcfg::etcd::EtcdError>(())
/// ```
#[derive(Clone)]
pub struct EtcdTls {
    ca: Vec<u8>,
    identity: Option<(Vec<u8>, Secret<Vec<u8>>)>,
    domain: Option<String>,
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &format_args!("{} bytes of PEM", self.ca.len()))
            .field("client_certificate", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl EtcdTls {
    /// TLS that trusts the CA certificate `ca_pem` (PEM text).
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        EtcdTls {
            ca: ca_pem.into(),
            identity: None,
            domain: None,
        }
    }

    /// Presents this client certificate and its private key (PEM text) to etcd.
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert_pem.into(), Secret::new(key_pem.into())));
        self
    }

    /// Checks the server's certificate for this name instead of the endpoint's host.
    pub fn domain(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    /// Reads the CA certificate, and the client certificate and key when given, from PEM files.
    /// An unreadable or empty file is an [`EtcdError::Setup`] naming it.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, EtcdError> {
        let mut tls = EtcdTls::new(read_pem(ca, "CA certificate")?);
        if let Some((cert, key)) = identity {
            tls = tls.identity(
                read_pem(cert, "client certificate")?,
                read_pem(key, "client key")?,
            );
        }
        Ok(tls)
    }

    fn options(&self) -> TlsOptions {
        let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(&self.ca));
        if let Some((cert, key)) = &self.identity {
            options = options.identity(Identity::from_pem(cert, key.expose_secret()));
        }
        if let Some(domain) = &self.domain {
            options = options.domain_name(domain.clone());
        }
        options
    }
}

/// A PEM file's bytes, refused when unreadable or when it holds no PEM block.
fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, EtcdError> {
    let bytes = std::fs::read(path)
        .map_err(|e| EtcdError::Setup(format!("cannot read the {what} {}: {e}", path.display())))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(EtcdError::Setup(format!(
            "the {what} {} is not PEM (no -----BEGIN line)",
            path.display()
        )));
    }
    Ok(bytes)
}

/// How a client reaches a secured etcd: [`EtcdTls`] and/or a user and password (etcd's `--auth`:
/// the client authenticates on connecting and renews its token when it expires). The default is
/// neither: plain `http://` and no user.
///
/// ```no_run
/// use hotcfg::etcd::{EtcdClient, EtcdOptions, EtcdSecurity};
/// use hotcfg::Secret;
///
/// let client = EtcdClient::with_security(
///     ["127.0.0.1:2379"],
///     EtcdOptions::default(),
///     EtcdSecurity::new().user("billing", Secret::new(std::env::var("ETCD_PASSWORD")?)),
/// )?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct EtcdSecurity {
    tls: Option<EtcdTls>,
    user: Option<(String, Secret<String>)>,
}

impl EtcdSecurity {
    /// Neither TLS nor a user.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects over TLS: endpoints are `https://host:port` or `host:port`.
    pub fn tls(mut self, tls: EtcdTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticates as `name` with `password`.
    pub fn user(mut self, name: impl Into<String>, password: Secret<String>) -> Self {
        self.user = Some((name.into(), password));
        self
    }

    /// `true` when TLS is configured.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `true` when TLS presents a client certificate.
    pub(super) fn presents_certificate(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.identity.is_some())
    }

    /// The user name, when one is configured.
    pub fn user_name(&self) -> Option<&str> {
        self.user.as_ref().map(|(name, _)| name.as_str())
    }

    /// Refuses an endpoint whose scheme contradicts the TLS setting, before anything connects.
    pub(super) fn check_endpoint(&self, endpoint: &str) -> Result<(), EtcdError> {
        match (
            endpoint.starts_with("http://"),
            endpoint.starts_with("https://"),
        ) {
            (true, _) if self.uses_tls() => Err(EtcdError::Setup(format!(
                "{endpoint}: TLS is configured but the endpoint says http://; use https:// (or \
                 host:port)"
            ))),
            (_, true) if !self.uses_tls() => Err(EtcdError::Setup(format!(
                "{endpoint}: an https:// endpoint needs the CA certificate that signed etcd's \
                 certificate (EtcdTls; on the command line --etcd-ca FILE)"
            ))),
            _ => Ok(()),
        }
    }

    /// `options` with this TLS and user added.
    pub(super) fn apply(&self, mut options: ConnectOptions) -> ConnectOptions {
        if let Some(tls) = &self.tls {
            options = options.with_tls(tls.options());
        }
        if let Some((name, password)) = &self.user {
            options = options
                .with_user(name.clone(), password.expose_secret().clone())
                .with_auto_token_refresh(true);
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_scheme_that_contradicts_the_tls_setting_is_refused() {
        let plain = EtcdSecurity::new();
        assert!(plain.check_endpoint("127.0.0.1:2379").is_ok());
        assert!(plain.check_endpoint("http://127.0.0.1:2379").is_ok());
        let err = plain.check_endpoint("https://a:2379").unwrap_err();
        assert!(err.to_string().contains("--etcd-ca"), "{err}");
        let tls = EtcdSecurity::new().tls(EtcdTls::new("pem"));
        assert!(tls.check_endpoint("https://a:2379").is_ok());
        assert!(tls.check_endpoint("a:2379").is_ok());
        let err = tls.check_endpoint("http://a:2379").unwrap_err();
        assert!(err.to_string().contains("use https://"), "{err}");
    }

    #[test]
    fn a_missing_or_non_pem_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let err = EtcdTls::from_files(&missing, None).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot set up an etcd client: cannot read the CA certificate {}",
                missing.display()
            )),
            "{err}"
        );
        std::fs::write(&missing, "hello").unwrap();
        let err = EtcdTls::from_files(&missing, None).unwrap_err();
        assert!(err.to_string().contains("is not PEM"), "{err}");
    }

    #[test]
    fn debug_shows_neither_the_key_nor_the_password() {
        let security = EtcdSecurity::new()
            .tls(EtcdTls::new("ca").identity("cert", "KEYBYTES"))
            .user("ops", Secret::new("hunter2".to_string()));
        let text = format!("{security:?}");
        assert!(
            !text.contains("KEYBYTES") && !text.contains("hunter2"),
            "{text}"
        );
        assert_eq!(security.user_name(), Some("ops"));
    }
}
