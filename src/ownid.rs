//! OwnID's signature scheme and request payload (pure).
//!
//! OwnID signs each request as
//! `base64(HMAC-SHA256(key = base64-decode(shared secret), message = body + "." + timestamp))`,
//! where `body` is the raw request body exactly as received and `timestamp` is the
//! `ownid-timestamp` header string (Unix epoch milliseconds). This module owns that scheme:
//! [`SharedSecret`], [`sign`], [`verify`], and the request payload ([`parse_payload`]).
//!
//! Architecture invariant: this module is pure. It reads no clock (the caller passes
//! `now_ms`), no files and no environment; loading the secret from its sources is
//! `crate::config::load_secret`'s job. It knows nothing of HTTP: the HTTP layer maps
//! [`AuthError`] to `401` and [`PayloadError`] to `400`, and uses the messages as they are,
//! because none of them reveals anything secret.
//!
//! The order of the checks matters: the signature is verified over the raw bytes before
//! the body is parsed as JSON (so unauthenticated input never reaches the JSON parser), and
//! the freshness of the timestamp is judged only once the signature matched (so a
//! "stale timestamp" answer always means a clock or replay problem of a genuine sender,
//! never a forged request).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The length of an HMAC-SHA256 signature, in bytes.
pub const SIGNATURE_LEN: usize = 32;

/// The name of the header carrying the timestamp, as OwnID sends it.
pub const TIMESTAMP_HEADER: &str = "ownid-timestamp";

/// The name of the header carrying the signature, as OwnID sends it.
pub const SIGNATURE_HEADER: &str = "ownid-signature";

/// The shared secret from the OwnID console, decoded and ready to sign with.
///
/// Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SharedSecret {
    /// The keyed HMAC state; cloning it per request skips re-deriving the key pads.
    mac: Hmac<Sha256>,
    /// The key's length in bytes, for the start's warning about short keys.
    key_len: usize,
}

/// Why a shared secret's text was refused. The messages never quote the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("the shared secret is empty")]
    Empty,
    #[error(
        "the shared secret is not valid base64 (expected the console's value: letters, digits, '+', '/', optional '=' padding)"
    )]
    NotBase64,
}

impl SharedSecret {
    /// Decodes the console's base64 text. Surrounding whitespace (a trailing newline in a
    /// secret file, say) is ignored; padding is optional.
    pub fn from_base64(text: &str) -> Result<SharedSecret, SecretFormatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretFormatError::Empty);
        }
        let key = LENIENT_BASE64
            .decode(text)
            .map_err(|_| SecretFormatError::NotBase64)?;
        SharedSecret::from_bytes(&key)
    }

    /// Uses raw key bytes (already decoded). An empty key is refused.
    pub fn from_bytes(key: &[u8]) -> Result<SharedSecret, SecretFormatError> {
        if key.is_empty() {
            return Err(SecretFormatError::Empty);
        }
        // HMAC accepts keys of any length, so this cannot fail; mapping the error keeps
        // the code free of panics all the same.
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| SecretFormatError::Empty)?;
        Ok(SharedSecret {
            mac,
            key_len: key.len(),
        })
    }

    /// How many bytes the key has (after base64 decoding).
    pub fn key_len(&self) -> usize {
        self.key_len
    }

    fn mac_of(&self, body: &[u8], timestamp: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(body);
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

/// Signs a request the way OwnID does: returns the `ownid-signature` header value for
/// `body` (the exact bytes that will be sent) and the `ownid-timestamp` header value.
pub fn sign(secret: &SharedSecret, body: &[u8], timestamp: &str) -> String {
    let tag = secret.mac_of(body, timestamp).finalize().into_bytes();
    LENIENT_BASE64.encode(tag)
}

/// A request whose signature matched and whose timestamp is fresh.
///
/// Only [`verify`] makes one. It carries what replay protection needs: the signature bytes
/// (store them with the message, a second request with the same signature is a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    signature: [u8; SIGNATURE_LEN],
}

impl Verified {
    /// The decoded signature: a unique key for the request.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }
}

/// Why a request is not authentic or not fresh: each is a `401`.
///
/// The `Display` messages are fit for the response body: they say which check failed and
/// nothing about the secret, the expected signature or the server's clock. The fields are
/// for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing ownid-timestamp header")]
    MissingTimestamp,
    #[error("missing ownid-signature header")]
    MissingSignature,
    #[error("ownid-timestamp must be Unix time in milliseconds, as decimal digits")]
    BadTimestamp,
    #[error("ownid-timestamp is too old (outside the allowed clock skew)")]
    StaleTimestamp {
        /// How far behind the server's clock the timestamp is.
        age_ms: u64,
    },
    #[error("ownid-timestamp is in the future (outside the allowed clock skew)")]
    FutureTimestamp {
        /// How far ahead of the server's clock the timestamp is.
        ahead_ms: u64,
    },
    /// The signature does not match, or is not base64 of the right length.
    #[error("ownid-signature does not match the request")]
    BadSignature,
}

impl AuthError {
    /// A short stable label for metrics and logs (`missing_timestamp`, `bad_signature`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingTimestamp => "missing_timestamp",
            AuthError::MissingSignature => "missing_signature",
            AuthError::BadTimestamp => "bad_timestamp",
            AuthError::StaleTimestamp { .. } => "stale_timestamp",
            AuthError::FutureTimestamp { .. } => "future_timestamp",
            AuthError::BadSignature => "bad_signature",
        }
    }
}

/// Checks a request's signature and timestamp.
///
/// `body` is the raw request body exactly as received; `timestamp` and `signature` are the
/// header values (`None` when the header is absent). `now_ms` is the server's clock in Unix
/// epoch milliseconds. The timestamp must lie within `max_skew` of `now_ms`, either side.
///
/// The signature is compared in constant time. Checks run in this order: both headers
/// present, timestamp syntax, signature, freshness.
pub fn verify(
    secret: &SharedSecret,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now_ms: u64,
    max_skew: Duration,
) -> Result<Verified, AuthError> {
    let timestamp = timestamp.ok_or(AuthError::MissingTimestamp)?;
    let signature = signature.ok_or(AuthError::MissingSignature)?;
    let timestamp_ms = parse_timestamp(timestamp).ok_or(AuthError::BadTimestamp)?;

    let decoded = LENIENT_BASE64
        .decode(signature.trim())
        .map_err(|_| AuthError::BadSignature)?;
    let signature: [u8; SIGNATURE_LEN] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| AuthError::BadSignature)?;
    secret
        .mac_of(body, timestamp)
        .verify_slice(&signature)
        .map_err(|_| AuthError::BadSignature)?;

    let skew_ms = u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX);
    if timestamp_ms < now_ms && now_ms - timestamp_ms > skew_ms {
        return Err(AuthError::StaleTimestamp {
            age_ms: now_ms - timestamp_ms,
        });
    }
    if timestamp_ms > now_ms && timestamp_ms - now_ms > skew_ms {
        return Err(AuthError::FutureTimestamp {
            ahead_ms: timestamp_ms - now_ms,
        });
    }
    Ok(Verified { signature })
}

/// Parses a timestamp header: decimal digits only (no sign, no spaces), fitting in a `u64`.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The request body OwnID sends: `{"phoneNumber", "messageText", "code"}`.
///
/// The values are as sent; validating the number and the text is the caller's job. The
/// `Debug` output masks the number and hides the text and the code.
pub struct Payload {
    pub phone_number: String,
    pub message_text: String,
    pub code: String,
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("phone_number", &crate::mask::phone(&self.phone_number))
            .field(
                "message_text",
                &format_args!("<{} chars>", self.message_text.chars().count()),
            )
            .field("code", &format_args!("<redacted>"))
            .finish()
    }
}

/// Why a body is not a valid OwnID payload: each is a `400`. The messages name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON at all, or truncated, or followed by other data.
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    /// Valid JSON, but not an object, or an object with a field given twice.
    #[error("request body is not a valid OwnID request: {0}")]
    Invalid(String),
    #[error("missing field \"{0}\"")]
    MissingField(&'static str),
    #[error("field \"{0}\" must be a string")]
    WrongType(&'static str),
}

/// Parses the JSON body. Unknown extra fields are accepted (OwnID may add some); a field
/// given twice is refused, since two readers could disagree on which one counts.
pub fn parse_payload(body: &[u8]) -> Result<Payload, PayloadError> {
    // serde reads a struct from a JSON array too (by position); OwnID sends an object, so
    // anything else is refused before that leniency can apply.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => PayloadError::Invalid("expected a JSON object".to_owned()),
                Err(err) => PayloadError::Malformed(err.to_string()),
            },
        );
    }
    let wire: WirePayload = serde_json::from_slice(body).map_err(|err| match err.classify() {
        serde_json::error::Category::Data => PayloadError::Invalid(err.to_string()),
        _ => PayloadError::Malformed(err.to_string()),
    })?;
    Ok(Payload {
        phone_number: string_field(wire.phone_number, "phoneNumber")?,
        message_text: string_field(wire.message_text, "messageText")?,
        code: string_field(wire.code, "code")?,
    })
}

/// The wire shape of the body. Each field keeps "absent" (`None`) apart from "present but
/// not a string" (`Some(value)`), `null` included, so the error can say which it was.
#[derive(serde::Deserialize)]
#[serde(expecting = "a JSON object")]
struct WirePayload {
    #[serde(rename = "phoneNumber", default, deserialize_with = "present")]
    phone_number: Option<serde_json::Value>,
    #[serde(rename = "messageText", default, deserialize_with = "present")]
    message_text: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    code: Option<serde_json::Value>,
}

/// Deserializes a field that is present, `null` included (plain `Option` would read `null`
/// as absent).
fn present<'de, D>(deserializer: D) -> Result<Option<serde_json::Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <serde_json::Value as serde::Deserialize>::deserialize(deserializer).map(Some)
}

fn string_field(
    value: Option<serde_json::Value>,
    name: &'static str,
) -> Result<String, PayloadError> {
    match value {
        None => Err(PayloadError::MissingField(name)),
        Some(serde_json::Value::String(text)) => Ok(text),
        Some(_) => Err(PayloadError::WrongType(name)),
    }
}

/// Standard base64 that accepts the padding either present or absent: secrets pasted
/// from consoles and signatures from other tools differ on that, and it changes no bits.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
