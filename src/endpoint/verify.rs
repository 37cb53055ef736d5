//! The signature and credential schemes of the other senders (pure: the caller passes the
//! clock). Every comparison is constant time and length-checked: a signature that is
//! empty (`v1,`), truncated, too long or not validly encoded never verifies.
//!
//! - Standard Webhooks (Supabase's hooks use it): `webhook-signature` holds space-separated
//!   `v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>` entries; other versions
//!   (`v1a,` asymmetric) are ignored; the timestamp is Unix seconds, within 5 minutes.
//! - Zitadel: `ZITADEL-Signature: t=<Unix s>,v1=<hex HMAC-SHA256(key, t "." body)>`, one or
//!   more `v1=`; the key is the signing key's bytes as given.
//! - Bearer token and HTTP Basic (the `json` kind and Twilio).

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const TAG_LEN: usize = 32;

/// Signing keys (several for rotation). `Debug` never shows them.
#[derive(Clone)]
pub struct Keys(Vec<Vec<u8>>);

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys(<{} redacted>)", self.0.len())
    }
}

impl Keys {
    /// Standard Webhooks secrets, one per line, as dashboards show them: `whsec_<base64>`,
    /// or Supabase's `v1,whsec_<base64>`. Every line is a key (rotation). Blank lines are
    /// skipped; a line that is not such a secret is an error (naming its line, not its text).
    pub fn standard_webhooks(text: &str) -> Result<Keys, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let b64 = line.strip_prefix("v1,").unwrap_or(line);
            let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
            match STANDARD.decode(b64) {
                Ok(key) if !key.is_empty() => keys.push(key),
                _ => {
                    return Err(format!(
                        "line {} is not a secret of the form v1,whsec_<base64> or whsec_<base64>",
                        n + 1
                    ));
                }
            }
        }
        if keys.is_empty() {
            return Err("the file holds no secret".to_owned());
        }
        Ok(Keys(keys))
    }

    /// Raw keys, one per line, used byte for byte (Zitadel's signing key).
    pub fn raw_lines(text: &str) -> Result<Keys, String> {
        let keys: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if keys.is_empty() {
            return Err("the file holds no key".to_owned());
        }
        Ok(Keys(keys))
    }

    pub fn from_raw(keys: Vec<Vec<u8>>) -> Keys {
        Keys(keys)
    }

    fn first(&self) -> &[u8] {
        self.0.first().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// How one endpoint authenticates its requests.
#[derive(Clone)]
pub enum Credentials {
    StandardWebhooks(Keys),
    Zitadel(Keys),
    Bearer(String),
    Basic { user: String, password: String },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::StandardWebhooks(k) => write!(f, "StandardWebhooks({k:?})"),
            Credentials::Zitadel(k) => write!(f, "Zitadel({k:?})"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
        }
    }
}

/// Why a request is not authentic: each is a `401`. The messages say which check failed,
/// nothing about the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("{0} is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match the request")]
    BadSignature,
    #[error("the timestamp is outside the allowed 5 minutes")]
    Stale,
    #[error("bad credentials")]
    BadCredentials,
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; the fallback key keeps this free of panics.
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new_from_slice(b"\0").expect("non-empty"))
}

fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    let mut m = mac(key);
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

fn fresh(timestamp_secs: u64, now_ms: u64, skew: Duration) -> bool {
    let ts_ms = u128::from(timestamp_secs) * 1000;
    let now = u128::from(now_ms);
    ts_ms.abs_diff(now) <= skew.as_millis()
}

fn parse_secs(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Decodes standard base64 with its padding, exactly `TAG_LEN` bytes, or nothing.
fn decode_tag_b64(text: &str) -> Option<[u8; TAG_LEN]> {
    // 32 bytes are 44 characters with padding; checking first bounds the work on junk.
    if text.len() != 44 {
        return None;
    }
    STANDARD.decode(text).ok()?.as_slice().try_into().ok()
}

fn decode_tag_hex(text: &str) -> Option<[u8; TAG_LEN]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * TAG_LEN {
        return None;
    }
    let mut out = [0u8; TAG_LEN];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A verified Standard Webhooks request: the `webhook-id` (a platform's retry may carry a
/// new one, so dedup does not rely on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
}

/// Checks a Standard Webhooks request over the raw `body`.
pub fn verify_standard_webhooks(
    keys: &Keys,
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_ms: u64,
    skew: Duration,
) -> Result<Verified, AuthError> {
    let id = id.ok_or(AuthError::Missing("webhook-id"))?;
    let timestamp = timestamp.ok_or(AuthError::Missing("webhook-timestamp"))?;
    let signature = signature.ok_or(AuthError::Missing("webhook-signature"))?;
    let secs = parse_secs(timestamp).ok_or(AuthError::Malformed("webhook-timestamp"))?;
    let mut matched = false;
    for entry in signature.split(' ') {
        // Supabase joins several entries with ", ": a trailing comma is not part of them.
        let entry = entry.trim_end_matches(',');
        let Some((version, value)) = entry.split_once(',') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        let Some(given) = decode_tag_b64(value) else {
            continue;
        };
        for key in &keys.0 {
            let expected = tag(
                key,
                &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
            );
            matched |= bool::from(expected.ct_eq(&given));
        }
    }
    if !matched {
        return Err(AuthError::BadSignature);
    }
    if !fresh(secs, now_ms, skew) {
        return Err(AuthError::Stale);
    }
    Ok(Verified { id: id.to_owned() })
}

/// The `webhook-signature` value for a request, signed with the first key.
pub fn sign_standard_webhooks(keys: &Keys, id: &str, timestamp: &str, body: &[u8]) -> String {
    let t = tag(
        keys.first(),
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(t))
}

/// Checks a `ZITADEL-Signature` header over the raw `body`.
pub fn verify_zitadel(
    keys: &Keys,
    header: Option<&str>,
    body: &[u8],
    now_ms: u64,
    skew: Duration,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing("ZITADEL-Signature"))?;
    let mut timestamp = None;
    let mut given = Vec::new();
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            return Err(AuthError::Malformed("ZITADEL-Signature"));
        };
        match k {
            "t" if timestamp.is_none() => timestamp = Some(v),
            "t" => return Err(AuthError::Malformed("ZITADEL-Signature")),
            "v1" => given.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(AuthError::Malformed("ZITADEL-Signature"))?;
    let secs = parse_secs(timestamp).ok_or(AuthError::Malformed("ZITADEL-Signature"))?;
    let mut matched = false;
    for value in given {
        let Some(given) = decode_tag_hex(value) else {
            continue;
        };
        for key in &keys.0 {
            let expected = tag(key, &[timestamp.as_bytes(), b".", body]);
            matched |= bool::from(expected.ct_eq(&given));
        }
    }
    if !matched {
        return Err(AuthError::BadSignature);
    }
    if !fresh(secs, now_ms, skew) {
        return Err(AuthError::Stale);
    }
    Ok(())
}

/// The `ZITADEL-Signature` value for a request at `timestamp` (Unix seconds).
pub fn sign_zitadel(keys: &Keys, timestamp: &str, body: &[u8]) -> String {
    let t = tag(keys.first(), &[timestamp.as_bytes(), b".", body]);
    format!("t={timestamp},v1={}", hex(&t))
}

/// Compares two secrets in constant time, whatever their lengths: both are hashed first,
/// so neither the content nor the length leaks through timing.
pub fn secret_eq(given: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(given);
    let b = Sha256::digest(expected);
    bool::from(a.ct_eq(&b))
}

/// Checks an `Authorization` header against bearer or Basic credentials.
pub fn verify_authorization(
    credentials: &Credentials,
    authorization: Option<&str>,
) -> Result<(), AuthError> {
    let header = authorization.ok_or(AuthError::Missing("Authorization"))?;
    let (scheme, value) = header
        .split_once(' ')
        .ok_or(AuthError::Malformed("Authorization"))?;
    let ok = match credentials {
        Credentials::Bearer(token) if scheme.eq_ignore_ascii_case("bearer") => {
            secret_eq(value.trim().as_bytes(), token.as_bytes())
        }
        Credentials::Basic { user, password } if scheme.eq_ignore_ascii_case("basic") => {
            let decoded = STANDARD
                .decode(value.trim())
                .map_err(|_| AuthError::Malformed("Authorization"))?;
            let (u, p) = match decoded.iter().position(|&b| b == b':') {
                Some(i) => (&decoded[..i], &decoded[i + 1..]),
                None => return Err(AuthError::Malformed("Authorization")),
            };
            // Both halves always compared: no early exit on the user name.
            let user_ok = secret_eq(u, user.as_bytes());
            let password_ok = secret_eq(p, password.as_bytes());
            user_ok & password_ok
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadCredentials)
    }
}

/// An `Authorization: Basic` value.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: Duration = Duration::from_secs(300);

    // The Standard Webhooks specification's example (standard-webhooks/standard-webhooks,
    // spec/standard-webhooks.md, and its libraries' tests).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: &str = "1614265330";
    const SW_BODY: &str = r#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const SW_NOW: u64 = 1_614_265_330_000;

    fn sw(sig: &str) -> Result<Verified, AuthError> {
        let keys = Keys::standard_webhooks(SW_SECRET).unwrap();
        verify_standard_webhooks(
            &keys,
            Some(SW_ID),
            Some(SW_TS),
            Some(sig),
            SW_BODY.as_bytes(),
            SW_NOW,
            SKEW,
        )
    }

    #[test]
    fn the_published_standard_webhooks_vector_signs_and_verifies() {
        let keys = Keys::standard_webhooks(SW_SECRET).unwrap();
        assert_eq!(
            sign_standard_webhooks(&keys, SW_ID, SW_TS, SW_BODY.as_bytes()),
            SW_SIG
        );
        assert!(sw(SW_SIG).is_ok());
        // Supabase's form of the same secret, and a list with other entries around it.
        let supabase = Keys::standard_webhooks(&format!("v1,{SW_SECRET}\n")).unwrap();
        assert_eq!(
            sign_standard_webhooks(&supabase, SW_ID, SW_TS, SW_BODY.as_bytes()),
            SW_SIG
        );
        assert!(sw(&format!("v1a,AAAA v1,bm90IGl0 {SW_SIG}")).is_ok());
        assert!(sw(&format!("{SW_SIG}, v1,bm90IGl0")).is_ok());
    }

    #[test]
    fn empty_truncated_or_misencoded_signatures_never_verify() {
        let good = SW_SIG.strip_prefix("v1,").unwrap();
        let cases = [
            "".to_owned(),
            "v1,".to_owned(),
            "v1, ".to_owned(),
            " ".to_owned(),
            "v1".to_owned(),
            format!("v1,{}", &good[..43]),
            format!("v1,{}", &good[..good.len() - 2]),
            format!("v1,{good}A"),
            format!("v1,{}", good.replace('+', "-")),
            format!("v2,{good}"),
            format!("v1a,{good}"),
            format!("V1,{good}"),
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ];
        for sig in cases {
            assert_eq!(sw(&sig), Err(AuthError::BadSignature), "{sig:?}");
        }
    }

    #[test]
    fn the_body_id_and_timestamp_are_all_signed() {
        let keys = Keys::standard_webhooks(SW_SECRET).unwrap();
        let v = |id: &str, ts: &str, body: &str| {
            verify_standard_webhooks(
                &keys,
                Some(id),
                Some(ts),
                Some(SW_SIG),
                body.as_bytes(),
                SW_NOW,
                SKEW,
            )
        };
        assert_eq!(v("msg_other", SW_TS, SW_BODY), Err(AuthError::BadSignature));
        assert_eq!(
            v(SW_ID, "1614265331", SW_BODY),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(SW_ID, SW_TS, r#"{"test": 2432232315}"#),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            v(SW_ID, "soon", SW_BODY),
            Err(AuthError::Malformed("webhook-timestamp"))
        );
    }

    #[test]
    fn five_minutes_either_way_and_no_more() {
        let keys = Keys::standard_webhooks(SW_SECRET).unwrap();
        let at = |now| {
            verify_standard_webhooks(
                &keys,
                Some(SW_ID),
                Some(SW_TS),
                Some(SW_SIG),
                SW_BODY.as_bytes(),
                now,
                SKEW,
            )
        };
        assert!(at(SW_NOW + 300_000).is_ok());
        assert!(at(SW_NOW - 300_000).is_ok());
        assert_eq!(at(SW_NOW + 300_001), Err(AuthError::Stale));
        assert_eq!(at(SW_NOW - 300_001), Err(AuthError::Stale));
    }

    #[test]
    fn rotation_accepts_every_line_of_the_secret_file() {
        let other = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";
        let keys = Keys::standard_webhooks(&format!("{other}\nv1,{SW_SECRET}\n")).unwrap();
        assert!(
            verify_standard_webhooks(
                &keys,
                Some(SW_ID),
                Some(SW_TS),
                Some(SW_SIG),
                SW_BODY.as_bytes(),
                SW_NOW,
                SKEW
            )
            .is_ok()
        );
        assert!(Keys::standard_webhooks("whsec_***").is_err());
        assert!(Keys::standard_webhooks("\n\n").is_err());
    }

    #[test]
    fn zitadel_signatures() {
        let keys = Keys::raw_lines("zitadel-signing-key\n").unwrap();
        let body = br#"{"contextInfo":{"recipientPhoneNumber":"+12015550123"}}"#;
        let header = sign_zitadel(&keys, "1700000000", body);
        assert!(header.starts_with("t=1700000000,v1="));
        let now = 1_700_000_000_000;
        assert_eq!(
            verify_zitadel(&keys, Some(&header), body, now, SKEW),
            Ok(())
        );
        let hexsig = header.split("v1=").nth(1).unwrap();
        // Several v1= entries: any one matching is enough.
        let two = format!("t=1700000000,v1={},v1={hexsig}", "0".repeat(64));
        assert_eq!(verify_zitadel(&keys, Some(&two), body, now, SKEW), Ok(()));
        for bad in [
            "t=1700000000,v1=".to_owned(),
            "t=1700000000".to_owned(),
            format!("t=1700000000,v1={}", &hexsig[..63]),
            format!("t=1700000000,v1={hexsig}0"),
            format!(
                "t=1700000000,v1={}",
                hexsig.to_uppercase().replace('A', "G")
            ),
            format!("t=1700000001,v1={hexsig}"),
            format!("v1={hexsig}"),
            format!("t=1700000000,t=1700000000,v1={hexsig}"),
            String::new(),
        ] {
            assert!(
                verify_zitadel(&keys, Some(&bad), body, now, SKEW).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify_zitadel(&keys, Some(&header), b"{}", now, SKEW),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify_zitadel(&keys, Some(&header), body, now + 300_001, SKEW),
            Err(AuthError::Stale)
        );
        assert_eq!(
            verify_zitadel(&keys, None, body, now, SKEW),
            Err(AuthError::Missing("ZITADEL-Signature"))
        );
    }

    #[test]
    fn bearer_and_basic() {
        let bearer = Credentials::Bearer("s3cret-token".into());
        assert_eq!(
            verify_authorization(&bearer, Some("Bearer s3cret-token")),
            Ok(())
        );
        for bad in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer ",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(verify_authorization(&bearer, Some(bad)).is_err(), "{bad}");
        }
        let basic_c = Credentials::Basic {
            user: "AC1".into(),
            password: "tok".into(),
        };
        assert_eq!(
            verify_authorization(&basic_c, Some(&basic("AC1", "tok"))),
            Ok(())
        );
        assert!(verify_authorization(&basic_c, Some(&basic("AC1", "to"))).is_err());
        assert!(verify_authorization(&basic_c, Some(&basic("AC2", "tok"))).is_err());
        assert!(verify_authorization(&basic_c, Some(&basic("AC1", ""))).is_err());
        assert!(verify_authorization(&basic_c, Some("Basic !!!")).is_err());
        assert!(verify_authorization(&basic_c, None).is_err());
    }
}
