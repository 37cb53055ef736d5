//! The secrets a configuration points to: the OwnID shared secret (systemd credential,
//! file or environment) and SIM PINs. Nothing here logs a secret or puts one in an error.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::ownid::{SecretFormatError, SharedSecret};

pub(super) fn read_pin(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("cannot read it: {err}"))?;
    let pin = text.trim();
    if pin.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a SIM PIN is 4 to 8 digits".to_owned());
    }
    Ok(pin.to_owned())
}

/// The environment variable that may hold the shared secret (base64).
pub const SECRET_ENV: &str = "SMSBRIDGE_SHARED_SECRET";

/// The systemd credential name (`LoadCredential=shared-secret:...`).
pub const SECRET_CREDENTIAL: &str = "shared-secret";

/// The secret and where it came from (for a log line; never log the secret).
#[derive(Debug)]
pub struct LoadedSecret {
    pub secret: SharedSecret,
    pub source: SecretSource,
}

/// Where a shared secret was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `$CREDENTIALS_DIRECTORY/shared-secret` (systemd `LoadCredential=`).
    Credential(PathBuf),
    /// The configured `ownid.shared_secret_file`.
    File(PathBuf),
    /// The `SMSBRIDGE_SHARED_SECRET` environment variable.
    Environment,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Credential(path) => write!(f, "systemd credential {}", path.display()),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Environment => write!(f, "environment variable {SECRET_ENV}"),
        }
    }
}

/// Why no usable shared secret was loaded. The messages name the source, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the shared secret from {origin}: {reason}")]
    Unreadable {
        origin: SecretSource,
        reason: String,
    },
    #[error("the shared secret in {origin} is unusable: {error}")]
    Format {
        origin: SecretSource,
        error: SecretFormatError,
    },
    #[error(
        "no shared secret found: looked for {} (provide one of them)",
        .looked.join(", ")
    )]
    NotFound { looked: Vec<String> },
    /// Fleet mode: the PostgreSQL URL could not be read or is no URL. `origin` names the
    /// key or source; the URL itself (it holds the password) is never in the message.
    #[error("{origin}: {reason}")]
    PostgresUrl { origin: String, reason: String },
}

/// Loads the shared secret from the first source that exists, in this order:
/// `$CREDENTIALS_DIRECTORY/shared-secret` (a systemd credential), the file
/// `shared_secret_file`, the environment variable `SMSBRIDGE_SHARED_SECRET`.
///
/// A source that does not exist is skipped; one that exists but cannot be read, is empty
/// or is not base64 stops the search with an error naming it. This is a thin wrapper over
/// [`load_secret_from`] that reads the process environment.
pub fn load_secret(shared_secret_file: Option<&Path>) -> Result<LoadedSecret, SecretError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
    let env_secret = std::env::var_os(SECRET_ENV);
    load_secret_from(
        credentials.as_deref().map(Path::new),
        shared_secret_file,
        env_secret.as_deref(),
    )
}

/// [`load_secret`] with the environment passed in: `credentials_directory` is the value
/// of `$CREDENTIALS_DIRECTORY`, `env_secret` the value of `$SMSBRIDGE_SHARED_SECRET`.
pub fn load_secret_from(
    credentials_directory: Option<&Path>,
    shared_secret_file: Option<&Path>,
    env_secret: Option<&OsStr>,
) -> Result<LoadedSecret, SecretError> {
    let mut looked = Vec::new();
    let candidates = [
        credentials_directory.map(|dir| SecretSource::Credential(dir.join(SECRET_CREDENTIAL))),
        shared_secret_file.map(|path| SecretSource::File(path.to_owned())),
    ];
    for origin in candidates.into_iter().flatten() {
        let path = match &origin {
            SecretSource::Credential(path) | SecretSource::File(path) => path.clone(),
            SecretSource::Environment => continue,
        };
        match std::fs::read(&path) {
            Ok(bytes) => return decode_secret(&bytes, origin),
            Err(err) if err.kind() == io::ErrorKind::NotFound => looked.push(origin.to_string()),
            Err(err) => {
                return Err(SecretError::Unreadable {
                    origin,
                    reason: err.to_string(),
                });
            }
        }
    }
    match env_secret {
        Some(value) => decode_secret(value.as_encoded_bytes(), SecretSource::Environment),
        None => {
            looked.push(SecretSource::Environment.to_string());
            Err(SecretError::NotFound { looked })
        }
    }
}

fn decode_secret(bytes: &[u8], origin: SecretSource) -> Result<LoadedSecret, SecretError> {
    // Base64 is ASCII; anything else is simply not base64 (and is not echoed back).
    let text = std::str::from_utf8(bytes).map_err(|_| SecretError::Format {
        origin: origin.clone(),
        error: SecretFormatError::NotBase64,
    })?;
    match SharedSecret::from_base64(text) {
        Ok(secret) => Ok(LoadedSecret {
            secret,
            source: origin,
        }),
        Err(error) => Err(SecretError::Format { origin, error }),
    }
}

/// The environment variable that may hold the fleet's PostgreSQL URL.
pub const POSTGRES_URL_ENV: &str = "SMSBRIDGE_POSTGRES_URL";

/// The systemd credential name of the PostgreSQL URL (`LoadCredential=postgres-url:...`).
pub const POSTGRES_URL_CREDENTIAL: &str = "postgres-url";

/// The fleet's PostgreSQL URL from the first source given: the file `url_file` (`[store]
/// url_file`), else `$CREDENTIALS_DIRECTORY/postgres-url`, else the value of
/// `SMSBRIDGE_POSTGRES_URL`. Returns the URL (surrounding whitespace trimmed) and where it
/// came from. A source that is given but unreadable or empty, or that holds no
/// `postgres://` / `postgresql://` URL, is an error naming it, never quoting it.
pub fn load_postgres_url(
    url_file: Option<&Path>,
    credentials_directory: Option<&Path>,
    env_url: Option<&OsStr>,
) -> Result<(String, String), SecretError> {
    let check = |text: &str, origin: String| {
        let url = text.trim();
        if url.is_empty() {
            return Err(SecretError::PostgresUrl {
                origin,
                reason: "is empty; it must hold the PostgreSQL URL, e.g. postgresql://smsbridge:PASSWORD@db.example:5432/smsbridge".to_owned(),
            });
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(SecretError::PostgresUrl {
                origin,
                reason:
                    "does not hold a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
                        .to_owned(),
            });
        }
        Ok((url.to_owned(), origin))
    };
    let read = |path: &Path, origin: String| match std::fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => check(text, origin),
            Err(_) => Err(SecretError::PostgresUrl {
                origin,
                reason: "is not UTF-8 text".to_owned(),
            }),
        },
        Err(err) => Err(SecretError::PostgresUrl {
            origin,
            reason: format!("cannot read it: {err}"),
        }),
    };
    if let Some(path) = url_file {
        return read(path, format!("[store] url_file {}", path.display()));
    }
    if let Some(dir) = credentials_directory {
        let path = dir.join(POSTGRES_URL_CREDENTIAL);
        if path.exists() {
            let origin = format!("systemd credential {}", path.display());
            return read(&path, origin);
        }
    }
    match env_url {
        Some(value) => match value.to_str() {
            Some(text) => check(text, format!("environment variable {POSTGRES_URL_ENV}")),
            None => Err(SecretError::PostgresUrl {
                origin: format!("environment variable {POSTGRES_URL_ENV}"),
                reason: "is not UTF-8 text".to_owned(),
            }),
        },
        None => Err(SecretError::PostgresUrl {
            origin: "[store] url_file".to_owned(),
            reason: format!(
                "backend = \"postgres\" needs the database's URL: set [store] url_file, or provide the systemd credential {POSTGRES_URL_CREDENTIAL} or the environment variable {POSTGRES_URL_ENV}"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgresql://smsbridge:s3cret-pw@db.example:5432/smsbridge";

    #[test]
    fn the_postgres_url_comes_from_url_file_then_the_credential_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("postgres-url");
        std::fs::write(&file, format!("{URL}\n")).unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        std::fs::write(
            creds.join(POSTGRES_URL_CREDENTIAL),
            "postgres://c@h/credential",
        )
        .unwrap();
        let env = OsStr::new("postgres://e@h/environment");

        let (url, origin) = load_postgres_url(Some(&file), Some(&creds), Some(env)).unwrap();
        assert_eq!(url, URL, "trimmed, from url_file first");
        assert!(origin.starts_with("[store] url_file"), "{origin}");
        let (url, origin) = load_postgres_url(None, Some(&creds), Some(env)).unwrap();
        assert_eq!(url, "postgres://c@h/credential");
        assert!(origin.starts_with("systemd credential"), "{origin}");
        let empty_creds = dir.path().join("none");
        let (url, origin) = load_postgres_url(None, Some(&empty_creds), Some(env)).unwrap();
        assert_eq!(url, "postgres://e@h/environment");
        assert_eq!(origin, "environment variable SMSBRIDGE_POSTGRES_URL");
        let missing = load_postgres_url(None, None, None).unwrap_err().to_string();
        assert!(missing.contains("[store] url_file"), "{missing}");
    }

    #[test]
    fn a_bad_url_is_named_by_its_source_and_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("postgres-url");
        std::fs::write(&file, "mysql://root:hunter2@db/x").unwrap();
        let error = load_postgres_url(Some(&file), None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("[store] url_file"), "{error}");
        assert!(
            !error.contains("hunter2") && !error.contains("mysql"),
            "{error}"
        );
        std::fs::write(&file, "  \n").unwrap();
        let error = load_postgres_url(Some(&file), None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("is empty"), "{error}");
        let gone = dir.path().join("absent");
        let error = load_postgres_url(Some(&gone), None, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot read it"), "{error}");
    }
}
