//! The `[[endpoint]]` tables as written (serde), their validation (every problem named by
//! its key, `endpoint[1].template`), and [`EndpointConfig::load`], which reads the secret
//! files once at start into an [`Endpoint`] ready to verify requests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::verify::{Credentials, Keys};

/// The kinds of `[[endpoint]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Supabase,
    StandardWebhooks,
    Zitadel,
    Json,
    Twilio,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Supabase,
        Kind::StandardWebhooks,
        Kind::Zitadel,
        Kind::Json,
        Kind::Twilio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Supabase => "supabase",
            Kind::StandardWebhooks => "standard-webhooks",
            Kind::Zitadel => "zitadel",
            Kind::Json => "json",
            Kind::Twilio => "twilio",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// The default `dedup_secs`: a platform's retry within this long is not a second SMS.
pub const DEFAULT_DEDUP_SECS: i64 = 30;

/// The default Supabase template (Supabase sends the code, not a text).
pub const DEFAULT_TEMPLATE: &str = "Your code is {code}";

/// How far a signed timestamp may be from our clock (Standard Webhooks and Zitadel both
/// say five minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// Twilio's API version prefix; its paths are fixed.
pub const TWILIO_PREFIX: &str = "/2010-04-01/Accounts/";

/// One `[[endpoint]]` table as written. Which keys apply depends on `kind`; a key that
/// does not apply to the kind is refused by [`validate`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub kind: String,
    /// The name in metrics and logs; defaults to the kind.
    pub name: Option<String>,
    pub path: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub template: Option<String>,
    pub phone_pointer: Option<String>,
    pub text_pointer: Option<String>,
    pub code_pointer: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_user: Option<String>,
    pub basic_password_file: Option<PathBuf>,
    pub account_sid: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub dedup_secs: Option<i64>,
}

impl EndpointConfig {
    /// The kind; only meaningful after [`validate`] accepted the table.
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Json)
    }

    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.clone())
    }

    pub fn dedup(&self) -> Duration {
        Duration::from_secs(
            self.dedup_secs
                .unwrap_or(DEFAULT_DEDUP_SECS)
                .max(0)
                .unsigned_abs(),
        )
    }

    /// The route this endpoint answers (Twilio: the account's Messages resource).
    pub fn route(&self) -> String {
        match self.kind() {
            Kind::Twilio => format!(
                "{TWILIO_PREFIX}{}/Messages.json",
                self.account_sid.as_deref().unwrap_or("")
            ),
            _ => self.path.clone().unwrap_or_default(),
        }
    }

    /// Reads the secret files into an [`Endpoint`]. I/O; at start only. The error names the
    /// key and the file, never the content.
    pub fn load(&self) -> Result<Endpoint, String> {
        let key = |k: &str| format!("endpoint {:?}: {k}", self.name());
        let credentials = match self.kind() {
            Kind::Supabase | Kind::StandardWebhooks => {
                let path = self.secret_file.as_deref().unwrap_or(Path::new(""));
                let text = read(path).map_err(|e| format!("{}: {e}", key("secret_file")))?;
                Credentials::StandardWebhooks(
                    Keys::standard_webhooks(&text)
                        .map_err(|e| format!("{}: {e}", key("secret_file")))?,
                )
            }
            Kind::Zitadel => {
                let path = self.secret_file.as_deref().unwrap_or(Path::new(""));
                let text = read(path).map_err(|e| format!("{}: {e}", key("secret_file")))?;
                Credentials::Zitadel(
                    Keys::raw_lines(&text).map_err(|e| format!("{}: {e}", key("secret_file")))?,
                )
            }
            Kind::Json => match (&self.bearer_token_file, &self.basic_user) {
                (Some(path), _) => {
                    let text =
                        read(path).map_err(|e| format!("{}: {e}", key("bearer_token_file")))?;
                    Credentials::Bearer(
                        one_line(&text)
                            .map_err(|e| format!("{}: {e}", key("bearer_token_file")))?,
                    )
                }
                (None, Some(user)) => {
                    let path = self.basic_password_file.as_deref().unwrap_or(Path::new(""));
                    let text =
                        read(path).map_err(|e| format!("{}: {e}", key("basic_password_file")))?;
                    Credentials::Basic {
                        user: user.clone(),
                        password: one_line(&text)
                            .map_err(|e| format!("{}: {e}", key("basic_password_file")))?,
                    }
                }
                (None, None) => return Err(key("bearer_token_file: missing")),
            },
            Kind::Twilio => {
                let path = self.auth_token_file.as_deref().unwrap_or(Path::new(""));
                let text = read(path).map_err(|e| format!("{}: {e}", key("auth_token_file")))?;
                Credentials::Basic {
                    user: self.account_sid.clone().unwrap_or_default(),
                    password: one_line(&text)
                        .map_err(|e| format!("{}: {e}", key("auth_token_file")))?,
                }
            }
        };
        Ok(Endpoint {
            config: self.clone(),
            kind: self.kind(),
            name: self.name(),
            credentials,
            dedup: self.dedup(),
        })
    }
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

fn one_line(text: &str) -> Result<String, String> {
    let line = text.trim();
    if line.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(line.to_owned())
}

/// An endpoint ready to answer: its table, and its keys loaded.
#[derive(Debug)]
pub struct Endpoint {
    pub config: EndpointConfig,
    pub kind: Kind,
    pub name: String,
    pub credentials: Credentials,
    pub dedup: Duration,
}

/// Checks every `[[endpoint]]` table; returns `(key, message)` for each problem.
/// `ownid_path` is `http.path`, which no endpoint may take.
pub fn validate(endpoints: &[EndpointConfig], ownid_path: &str) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut routes: Vec<(String, usize)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let mut p = |k: &str, m: String| problems.push((format!("endpoint[{i}].{k}"), m));
        let Some(kind) = Kind::parse(&e.kind) else {
            p(
                "kind",
                format!(
                    "{:?} is not a kind (supabase, standard-webhooks, zitadel, json, twilio)",
                    e.kind
                ),
            );
            continue;
        };
        // Keys that do not apply to the kind are refused: they would be silently ignored.
        let present: [(&str, bool); 12] = [
            ("path", e.path.is_some()),
            ("secret_file", e.secret_file.is_some()),
            ("template", e.template.is_some()),
            ("phone_pointer", e.phone_pointer.is_some()),
            ("text_pointer", e.text_pointer.is_some()),
            ("code_pointer", e.code_pointer.is_some()),
            ("bearer_token_file", e.bearer_token_file.is_some()),
            ("basic_user", e.basic_user.is_some()),
            ("basic_password_file", e.basic_password_file.is_some()),
            ("account_sid", e.account_sid.is_some()),
            ("auth_token_file", e.auth_token_file.is_some()),
            ("dedup_secs", e.dedup_secs.is_some()),
        ];
        let allowed: &[&str] = match kind {
            Kind::Supabase => &["path", "secret_file", "template", "dedup_secs"],
            Kind::StandardWebhooks => &[
                "path",
                "secret_file",
                "template",
                "phone_pointer",
                "text_pointer",
                "code_pointer",
                "dedup_secs",
            ],
            Kind::Zitadel => &["path", "secret_file", "template", "dedup_secs"],
            Kind::Json => &[
                "path",
                "template",
                "phone_pointer",
                "text_pointer",
                "code_pointer",
                "bearer_token_file",
                "basic_user",
                "basic_password_file",
                "dedup_secs",
            ],
            Kind::Twilio => &["account_sid", "auth_token_file", "dedup_secs"],
        };
        for (key, is_set) in present {
            if is_set && !allowed.contains(&key) {
                p(key, format!("does not apply to kind {:?}", e.kind));
            }
        }
        let name = e.name();
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
            p(
                "name",
                format!("{name:?} must be non-empty, without quotes or control characters"),
            );
        } else if names.contains(&name) {
            p(
                "name",
                format!("two endpoints are named {name:?}; give each its own name"),
            );
        }
        names.push(name);
        if let Some(secs) = e.dedup_secs {
            if !(0..=3600).contains(&secs) {
                p(
                    "dedup_secs",
                    format!("must be between 0 and 3600, not {secs}"),
                );
            }
        }
        match kind {
            Kind::Twilio => {
                match &e.account_sid {
                    None => p(
                        "account_sid",
                        "missing: the Account SID the client uses (AC + 32 hex digits)".to_owned(),
                    ),
                    Some(sid) if !is_sid(sid, "AC") => p(
                        "account_sid",
                        format!("{sid:?} is not an Account SID (AC + 32 hex digits)"),
                    ),
                    Some(_) => {}
                }
                if e.auth_token_file.is_none() {
                    p(
                        "auth_token_file",
                        "missing: the file holding the Auth Token".to_owned(),
                    );
                }
            }
            _ => match &e.path {
                None => p(
                    "path",
                    "missing: the URL path this endpoint answers".to_owned(),
                ),
                Some(path) => {
                    if !path.starts_with('/') {
                        p("path", format!("{path:?} must start with \"/\""));
                    } else if let Some(bad) = path
                        .chars()
                        .find(|ch| !(ch.is_ascii_alphanumeric() || "/-._~".contains(*ch)))
                    {
                        p(
                            "path",
                            format!(
                                "{path:?} may only contain letters, digits and / - . _ ~ (found {bad:?})"
                            ),
                        );
                    } else if path == ownid_path {
                        p("path", format!("{path:?} is OwnID's endpoint (http.path)"));
                    } else if path.starts_with("/2010-04-01/") {
                        p("path", format!("{path:?} is reserved for Twilio's API"));
                    }
                }
            },
        }
        match kind {
            Kind::Supabase | Kind::StandardWebhooks | Kind::Zitadel if e.secret_file.is_none() => {
                p(
                    "secret_file",
                    "missing: the file holding the signing secret".to_owned(),
                )
            }
            Kind::Json => match (&e.bearer_token_file, &e.basic_user, &e.basic_password_file) {
                (Some(_), None, None) | (None, Some(_), Some(_)) => {}
                (None, None, None) => p(
                    "bearer_token_file",
                    "missing: set bearer_token_file, or basic_user and basic_password_file"
                        .to_owned(),
                ),
                (Some(_), _, _) => p(
                    "basic_user",
                    "set either bearer_token_file or basic_user and basic_password_file, not both"
                        .to_owned(),
                ),
                (None, Some(_), None) => p(
                    "basic_password_file",
                    "missing: basic_user needs basic_password_file".to_owned(),
                ),
                (None, None, Some(_)) => p(
                    "basic_user",
                    "missing: basic_password_file needs basic_user".to_owned(),
                ),
            },
            _ => {}
        }
        if let Some(template) = &e.template {
            if !template.contains("{code}") {
                p("template", format!("{template:?} has no {{code}}"));
            }
        }
        for (key, pointer) in [
            ("phone_pointer", &e.phone_pointer),
            ("text_pointer", &e.text_pointer),
            ("code_pointer", &e.code_pointer),
        ] {
            if let Some(pointer) = pointer {
                if let Err(why) = super::map::check_pointer(pointer) {
                    p(
                        key,
                        format!("{pointer:?} is not a JSON Pointer (RFC 6901): {why}"),
                    );
                }
            }
        }
        if matches!(kind, Kind::StandardWebhooks | Kind::Json) {
            if e.phone_pointer.is_none() {
                p(
                    "phone_pointer",
                    "missing: where the phone number is in the JSON body, e.g. \"/phone\""
                        .to_owned(),
                );
            }
            match (&e.text_pointer, &e.template) {
                (None, None) => p(
                    "text_pointer",
                    "missing: set text_pointer, or template with code_pointer".to_owned(),
                ),
                (Some(_), Some(_)) => p(
                    "template",
                    "set either text_pointer or template, not both".to_owned(),
                ),
                (None, Some(_)) if e.code_pointer.is_none() => p(
                    "code_pointer",
                    "missing: template needs code_pointer".to_owned(),
                ),
                _ => {}
            }
        }
        let route = e.route();
        if let Some((_, j)) = routes.iter().find(|(r, _)| *r == route) {
            let key = if kind == Kind::Twilio {
                "account_sid"
            } else {
                "path"
            };
            p(key, format!("{route:?} is already endpoint[{j}]'s"));
        }
        routes.push((route, i));
    }
    problems
}

/// `prefix` + 32 lower- or upper-case hex digits: Twilio's SIDs.
pub fn is_sid(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml_text: &str) -> Vec<EndpointConfig> {
        #[derive(Deserialize)]
        struct File {
            endpoint: Vec<EndpointConfig>,
        }
        toml::from_str::<File>(toml_text).unwrap().endpoint
    }

    fn keys(toml_text: &str) -> Vec<String> {
        validate(&table(toml_text), "/ownid/sms")
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn a_good_table_of_each_kind_passes() {
        let text = r#"
[[endpoint]]
kind = "supabase"
path = "/hooks/supabase-sms"
secret_file = "/etc/x"
template = "Your code is {code}"
[[endpoint]]
kind = "standard-webhooks"
path = "/hooks/sw"
secret_file = "/etc/x"
phone_pointer = "/to"
text_pointer = "/a~1b/text"
[[endpoint]]
kind = "zitadel"
path = "/hooks/zitadel"
secret_file = "/etc/x"
[[endpoint]]
kind = "json"
name = "json-bearer"
path = "/hooks/json"
bearer_token_file = "/etc/x"
phone_pointer = "/phone"
template = "Code {code}"
code_pointer = "/code"
[[endpoint]]
kind = "json"
name = "json-basic"
path = "/hooks/json2"
basic_user = "app"
basic_password_file = "/etc/x"
phone_pointer = "/phone"
text_pointer = "/text"
[[endpoint]]
kind = "twilio"
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token_file = "/etc/x"
dedup_secs = 0
"#;
        assert_eq!(keys(text), Vec::<String>::new());
    }

    #[test]
    fn each_mistake_is_named_by_its_key() {
        let cases = [
            ("kind = \"keycloak\"\npath = \"/k\"", "endpoint[0].kind"),
            (
                "kind = \"supabase\"\npath = \"/s\"",
                "endpoint[0].secret_file",
            ),
            (
                "kind = \"supabase\"\npath = \"/s\"\nsecret_file = \"/x\"\ntemplate = \"no code\"",
                "endpoint[0].template",
            ),
            (
                "kind = \"supabase\"\npath = \"/ownid/sms\"\nsecret_file = \"/x\"",
                "endpoint[0].path",
            ),
            (
                "kind = \"supabase\"\nsecret_file = \"/x\"",
                "endpoint[0].path",
            ),
            (
                "kind = \"json\"\npath = \"/j\"\nbearer_token_file = \"/x\"\nphone_pointer = \"phone\"\ntext_pointer = \"/t\"",
                "endpoint[0].phone_pointer",
            ),
            (
                "kind = \"json\"\npath = \"/j\"\nbearer_token_file = \"/x\"\nphone_pointer = \"/p\"\ntext_pointer = \"/t~2\"",
                "endpoint[0].text_pointer",
            ),
            (
                "kind = \"json\"\npath = \"/j\"\nphone_pointer = \"/p\"\ntext_pointer = \"/t\"",
                "endpoint[0].bearer_token_file",
            ),
            (
                "kind = \"json\"\npath = \"/j\"\nbearer_token_file = \"/x\"\nphone_pointer = \"/p\"\ntemplate = \"{code}\"",
                "endpoint[0].code_pointer",
            ),
            (
                "kind = \"twilio\"\naccount_sid = \"AC12\"\nauth_token_file = \"/x\"",
                "endpoint[0].account_sid",
            ),
            (
                "kind = \"twilio\"\npath = \"/t\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token_file = \"/x\"",
                "endpoint[0].path",
            ),
            (
                "kind = \"zitadel\"\npath = \"/z\"\nsecret_file = \"/x\"\ndedup_secs = -1",
                "endpoint[0].dedup_secs",
            ),
        ];
        for (body, key) in cases {
            let got = keys(&format!("[[endpoint]]\n{body}\n"));
            assert!(
                got.contains(&key.to_owned()),
                "{body}: expected {key}, got {got:?}"
            );
        }
    }

    #[test]
    fn two_endpoints_on_one_path_or_name_clash() {
        let text = r#"
[[endpoint]]
kind = "zitadel"
path = "/z"
secret_file = "/x"
[[endpoint]]
kind = "zitadel"
name = "other"
path = "/z"
secret_file = "/x"
[[endpoint]]
kind = "zitadel"
path = "/z2"
secret_file = "/x"
"#;
        let got = keys(text);
        assert_eq!(got, vec!["endpoint[1].path", "endpoint[2].name"]);
    }

    #[test]
    fn a_missing_or_bad_secret_stops_the_start_without_showing_it() {
        // (That `Config` names `endpoint[0].template` is tested in tests/config.rs: a test
        // here naming `config` would make the module graph circular.)
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = EndpointConfig {
            kind: "zitadel".into(),
            path: Some("/z".into()),
            secret_file: Some(missing),
            ..EndpointConfig::default()
        };
        let err = e.load().unwrap_err();
        assert!(
            err.contains("secret_file") && err.contains("cannot read"),
            "{err}"
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not-a-whsec-secret!\n").unwrap();
        let e = EndpointConfig {
            kind: "supabase".into(),
            path: Some("/s".into()),
            secret_file: Some(bad),
            ..EndpointConfig::default()
        };
        let err = e.load().unwrap_err();
        assert!(
            err.contains("secret_file") && !err.contains("not-a-whsec"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_is_refused_by_serde() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct File {
            endpoint: Vec<EndpointConfig>,
        }
        let err =
            toml::from_str::<File>("[[endpoint]]\nkind = \"json\"\nsecret = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }
}
