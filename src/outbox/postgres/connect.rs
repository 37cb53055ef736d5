//! From the operator's URL to a connection: libpq's `sslmode` names, TLS with rustls (the
//! `ring` provider), and open errors sorted into a [`ConnectProblem`] with a message that
//! never holds the password.

use std::str::FromStr;
use std::sync::Arc;

use tokio_postgres::config::{Host, SslMode};

use super::super::{ConnectProblem, OutboxError};

/// The URL as tokio-postgres takes it, and what TLS it asks for.
pub(super) struct Target {
    pub config: tokio_postgres::Config,
    /// `user@host:port/dbname`, for messages: never the password.
    pub describe: String,
    /// TLS asked for: `sslmode` `require`, `verify-ca` or `verify-full`.
    pub tls: bool,
    /// `sslrootcert`: the CA file to trust instead of the system's store.
    pub root_cert: Option<String>,
}

fn connect_error(problem: ConnectProblem, message: String) -> OutboxError {
    OutboxError::Connect { problem, message }
}

/// Parses `url` (a `postgresql://` URL or libpq `key=value` words). tokio-postgres knows
/// `sslmode` `disable`, `prefer` and `require`; libpq's `verify-ca` and `verify-full` are
/// taken as `require` (this program always verifies the server's certificate and name) and
/// `sslrootcert` is handled here.
pub(super) fn parse(url: &str) -> Result<Target, OutboxError> {
    let mut tls_mode: Option<String> = None;
    let mut root_cert: Option<String> = None;
    let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    match key {
                        "sslmode" => tls_mode = Some(value.to_owned()),
                        "sslrootcert" => root_cert = Some(percent_decode(value)),
                        _ => kept.push(pair),
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", value)) => tls_mode = Some(value.to_owned()),
                Some(("sslrootcert", value)) => root_cert = Some(value.to_owned()),
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    let tls = match tls_mode.as_deref() {
        None | Some("disable") | Some("allow") | Some("prefer") => false,
        Some("require") | Some("verify-ca") | Some("verify-full") => true,
        Some(other) => {
            return Err(connect_error(
                ConnectProblem::BadUrl,
                format!(
                    "sslmode={other} is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                ),
            ));
        }
    };
    let mut config = tokio_postgres::Config::from_str(&cleaned).map_err(|e| {
        connect_error(
            ConnectProblem::BadUrl,
            format!("the PostgreSQL URL does not parse: {e}"),
        )
    })?;
    // Without TLS asked for, none is tried: `prefer` with a certificate nobody can verify
    // (a self-signed one) would otherwise fail where libpq connects.
    config.ssl_mode(if tls {
        SslMode::Require
    } else {
        SslMode::Disable
    });
    if config.get_hosts().is_empty() {
        return Err(connect_error(
            ConnectProblem::BadUrl,
            "the PostgreSQL URL names no host".to_owned(),
        ));
    }
    let describe = describe(&config);
    Ok(Target {
        config,
        describe,
        tls,
        root_cert,
    })
}

fn percent_decode(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "?".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// The rustls connector: the server's certificate verified against `sslrootcert` when
/// given, else the system's trust store.
pub(super) fn rustls(
    root_cert: Option<&str>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, OutboxError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let tls_error = |message: String| connect_error(ConnectProblem::Tls, message);
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_error(format!("cannot read sslrootcert {path}: {e}")))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| tls_error(format!("cannot read sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_error(format!("sslrootcert {path}: {e}")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A certificate of the store that rustls cannot use is skipped, as
                // browsers do; the others still verify.
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(tls_error(
            "no trusted CA certificate (install ca-certificates or give sslrootcert)".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Sorts an error of the first connection or of the schema set-up.
pub(super) fn classify(err: &tokio_postgres::Error, target: &str) -> OutboxError {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        let problem = match code {
            "28P01" | "28000" => ConnectProblem::Auth,
            "42501" => ConnectProblem::Permission,
            "57P03" | "53300" => ConnectProblem::Unreachable,
            _ => ConnectProblem::Other,
        };
        return connect_error(
            problem,
            format!("{target}: {} (SQLSTATE {code})", db.message()),
        );
    }
    let text = err.to_string();
    let problem = if text.starts_with("error performing TLS handshake") {
        ConnectProblem::Tls
    } else if text.starts_with("invalid configuration: password missing")
        || text.starts_with("authentication error")
    {
        ConnectProblem::Auth
    } else if text.starts_with("invalid connection string")
        || text.starts_with("invalid configuration")
    {
        ConnectProblem::BadUrl
    } else {
        ConnectProblem::Unreachable
    };
    connect_error(problem, format!("{target}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_taken_as_require_and_root_cert_is_kept() {
        let t = parse("postgresql://u:pw@db.example:5433/sms?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x")
            .unwrap();
        assert!(t.tls);
        assert_eq!(t.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(t.describe, "u@db.example:5433/sms");
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        let t = parse("host=db user=u password=pw dbname=sms sslmode=prefer").unwrap();
        assert!(!t.tls);
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn bad_urls_are_named_without_the_password() {
        for url in [
            "postgresql://u:s3cret@db/sms?sslmode=sometimes",
            "postgresql://u:s3cret@db/sms?frobnicate=1",
            "postgresql://u:s3cret@db:notaport/sms",
        ] {
            match parse(url) {
                Err(OutboxError::Connect { problem, message }) => {
                    assert_eq!(problem, ConnectProblem::BadUrl, "{url}");
                    assert!(!message.contains("s3cret"), "{message}");
                }
                Err(other) => panic!("{url}: {other}"),
                Ok(_) => panic!("{url} parsed"),
            }
        }
    }
}
