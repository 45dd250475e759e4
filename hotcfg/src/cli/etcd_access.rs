//! [`EtcdAccess`]: the command-line flags that reach a secured etcd (TLS files, a user and its
//! password), shared by `push`, `fleet-status` and programs that follow a key.

use std::path::{Path, PathBuf};

use crate::etcd::{split_endpoints, EtcdClient, EtcdError, EtcdOptions, EtcdSecurity, EtcdTls};
use crate::secret::Secret;

/// The environment variable read for the password of `--etcd-user` when no
/// `--etcd-password-file` is given.
pub const ETCD_PASSWORD_ENV: &str = "HOTCFG_ETCD_PASSWORD";

/// How to reach a secured etcd from the command line: `--etcd-ca FILE` (TLS, trusting that CA),
/// `--etcd-cert FILE --etcd-key FILE` (a client certificate), `--etcd-user NAME` with the
/// password in `--etcd-password-file FILE` or [`ETCD_PASSWORD_ENV`] (never on the command line,
/// where `ps` would show it). Flatten it into a clap command with `#[command(flatten)]`.
///
/// ```
/// use clap::Parser;
/// use hotcfg::cli::EtcdAccess;
///
/// #[derive(clap::Parser)]
/// struct Args {
///     #[arg(long)]
///     etcd: String,
///     #[command(flatten)]
///     access: EtcdAccess,
/// }
///
/// let args = Args::parse_from(["app", "--etcd", "https://10.0.0.1:2379", "--etcd-ca", "ca.pem"]);
/// assert_eq!(args.access.etcd_ca.as_deref(), Some("ca.pem".as_ref()));
/// // Reading the CA fails here, naming the file: nothing connects yet.
/// let err = args.access.client(&args.etcd, Default::default()).unwrap_err();
/// assert!(err.to_string().contains("cannot read the CA certificate ca.pem"), "{err}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct EtcdAccess {
    /// Connect over TLS, trusting this CA certificate (PEM) for etcd's certificate.
    #[arg(long = "etcd-ca", value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,
    /// Present this client certificate (PEM) to etcd; needs --etcd-ca and --etcd-key.
    #[arg(
        long = "etcd-cert",
        value_name = "FILE",
        requires = "etcd_ca",
        requires = "etcd_key"
    )]
    pub etcd_cert: Option<PathBuf>,
    /// The private key (PEM) of --etcd-cert.
    #[arg(long = "etcd-key", value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// Authenticate to etcd as this user; the password comes from --etcd-password-file or the
    /// HOTCFG_ETCD_PASSWORD environment variable.
    #[arg(long = "etcd-user", value_name = "NAME")]
    pub etcd_user: Option<String>,
    /// A file holding the password of --etcd-user (one line).
    #[arg(
        long = "etcd-password-file",
        value_name = "FILE",
        requires = "etcd_user"
    )]
    pub etcd_password_file: Option<PathBuf>,
}

impl EtcdAccess {
    /// The [`EtcdSecurity`] these flags describe, reading the files they name.
    pub fn security(&self) -> Result<EtcdSecurity, EtcdError> {
        let mut security = EtcdSecurity::new();
        if let Some(ca) = &self.etcd_ca {
            let identity = match (&self.etcd_cert, &self.etcd_key) {
                (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
                _ => None,
            };
            security = security.tls(EtcdTls::from_files(ca, identity)?);
        }
        if let Some(user) = &self.etcd_user {
            security = security.user(user.clone(), self.password(user)?);
        }
        Ok(security)
    }

    /// A client of `endpoints` (comma-separated) with these flags and `options`.
    pub fn client(&self, endpoints: &str, options: EtcdOptions) -> Result<EtcdClient, EtcdError> {
        EtcdClient::with_security(split_endpoints(endpoints), options, self.security()?)
    }

    fn password(&self, user: &str) -> Result<Secret<String>, EtcdError> {
        if let Some(path) = &self.etcd_password_file {
            return read_password(path);
        }
        match std::env::var(ETCD_PASSWORD_ENV) {
            Ok(password) => Ok(Secret::new(password)),
            Err(_) => Err(EtcdError::Setup(format!(
                "--etcd-user {user} needs a password: --etcd-password-file FILE or \
                 {ETCD_PASSWORD_ENV}"
            ))),
        }
    }
}

/// The password in `path`: its first line, without the line end.
fn read_password(path: &Path) -> Result<Secret<String>, EtcdError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EtcdError::Setup(format!(
            "cannot read the etcd password file {}: {e}",
            path.display()
        ))
    })?;
    let text = Secret::new(text);
    let line = text.expose_secret().lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(EtcdError::Setup(format!(
            "the etcd password file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(line.to_string()))
}
