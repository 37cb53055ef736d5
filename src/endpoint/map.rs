//! From each kind's payload to a message (pure): the destination number, the text and the
//! code (when the platform sends one, for dedup). JSON Pointers are RFC 6901.

use std::fmt;

use serde_json::Value;

use super::config::{DEFAULT_TEMPLATE, EndpointConfig, Kind};

/// What a request asks to send. `Debug` masks the number and hides the text and code.
pub struct Mapped {
    pub number: String,
    pub text: String,
    pub code: Option<String>,
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapped")
            .field("number", &crate::mask::phone(&self.number))
            .field(
                "text",
                &format_args!("<{} chars>", self.text.chars().count()),
            )
            .finish_non_exhaustive()
    }
}

/// Why a body gives no message: `NotJson` is a `400`, the others `400` naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("request body is not valid JSON")]
    NotJson,
    #[error("missing field {0}")]
    Missing(String),
    #[error("field {0} must be a string")]
    NotString(String),
}

/// Whether `pointer` is an RFC 6901 JSON Pointer: empty, or `/`-separated tokens where
/// `~` is only ever followed by `0` or `1`.
pub fn check_pointer(pointer: &str) -> Result<(), &'static str> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err("it must be empty or start with \"/\"");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("\"~\" must be followed by 0 or 1");
        }
    }
    Ok(())
}

/// Resolves an RFC 6901 pointer (`~1` is `/`, `~0` is `~`, in that order).
pub fn resolve<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let mut target = value;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        target = match target {
            Value::Object(map) => map.get(&token)?,
            Value::Array(list) => {
                // RFC 6901 array indices: "0" or digits without a leading zero.
                if token.is_empty()
                    || (token.len() > 1 && token.starts_with('0'))
                    || !token.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                list.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(target)
}

fn string_at(value: &Value, pointer: &str, name: &str) -> Result<Option<String>, MapError> {
    match resolve(value, pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(MapError::NotString(name.to_owned())),
    }
}

/// A code: a string, or a JSON integer (123456), common enough to accept as its digits.
fn code_at(value: &Value, pointer: &str, name: &str) -> Result<Option<String>, MapError> {
    match resolve(value, pointer) {
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        _ => string_at(value, pointer, name),
    }
}

fn required(value: &Value, pointer: &str, name: &str) -> Result<String, MapError> {
    string_at(value, pointer, name)?.ok_or_else(|| MapError::Missing(name.to_owned()))
}

/// Fills `template`'s `{code}`.
pub fn fill(template: &str, code: &str) -> String {
    template.replace("{code}", code)
}

/// Maps a JSON body of `config`'s kind (not Twilio, whose form is read by the handler).
pub fn map_json(config: &EndpointConfig, body: &[u8]) -> Result<Mapped, MapError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| MapError::NotJson)?;
    if !value.is_object() {
        return Err(MapError::NotJson);
    }
    match config.kind() {
        Kind::Supabase => {
            // Supabase Auth stores phones without "+" (it strips it); its hook payload
            // is {"user": {"phone": …}, "sms": {"otp": …}}.
            let number = match string_at(&value, "/sms/phone", "sms.phone")? {
                Some(n) if !n.is_empty() => n,
                _ => required(&value, "/user/phone", "user.phone")?,
            };
            let code = code_at(&value, "/sms/otp", "sms.otp")?
                .ok_or_else(|| MapError::Missing("sms.otp".to_owned()))?;
            let template = config.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
            Ok(Mapped {
                number: with_plus(&number),
                text: fill(template, &code),
                code: Some(code),
            })
        }
        Kind::Zitadel => {
            let number = required(
                &value,
                "/contextInfo/recipientPhoneNumber",
                "contextInfo.recipientPhoneNumber",
            )?;
            let code = code_at(&value, "/args/code", "args.code")?;
            let text = match (&config.template, &code) {
                (Some(template), Some(code)) => fill(template, code),
                _ => required(&value, "/templateData/text", "templateData.text")?,
            };
            Ok(Mapped { number, text, code })
        }
        Kind::StandardWebhooks | Kind::Json | Kind::Twilio => {
            let phone_pointer = config.phone_pointer.as_deref().unwrap_or("");
            let number = required(&value, phone_pointer, phone_pointer)?;
            let code = match &config.code_pointer {
                Some(p) => {
                    Some(code_at(&value, p, p)?.ok_or_else(|| MapError::Missing(p.clone()))?)
                }
                None => None,
            };
            let text = match (&config.text_pointer, &config.template, &code) {
                (Some(p), _, _) => required(&value, p, p)?,
                (None, Some(template), Some(code)) => fill(template, code),
                _ => return Err(MapError::Missing("text".to_owned())),
            };
            Ok(Mapped { number, text, code })
        }
    }
}

/// Adds the `+` a platform known to omit it left out (Supabase); other forms untouched.
fn with_plus(number: &str) -> String {
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{number}")
    } else {
        number.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> EndpointConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn rfc_6901_pointers() {
        // The RFC's own examples (section 5).
        let doc: Value = serde_json::from_str(
            r#"{"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4,
                "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}"#,
        )
        .unwrap();
        assert_eq!(resolve(&doc, ""), Some(&doc));
        assert_eq!(resolve(&doc, "/foo/0"), Some(&Value::from("bar")));
        assert_eq!(resolve(&doc, "/"), Some(&Value::from(0)));
        assert_eq!(resolve(&doc, "/a~1b"), Some(&Value::from(1)));
        assert_eq!(resolve(&doc, "/c%d"), Some(&Value::from(2)));
        assert_eq!(resolve(&doc, "/ "), Some(&Value::from(7)));
        assert_eq!(resolve(&doc, "/m~0n"), Some(&Value::from(8)));
        assert_eq!(resolve(&doc, "/foo/01"), None);
        assert_eq!(resolve(&doc, "/foo/-"), None);
        for good in ["", "/", "/a~0~1", "/foo/0"] {
            assert!(check_pointer(good).is_ok(), "{good}");
        }
        for bad in ["foo", "/a~", "/a~2", "#/foo"] {
            assert!(check_pointer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn supabase_send_sms_hook_payload() {
        // The shape of Supabase Auth's Send SMS hook input (supabase/auth,
        // internal/hooks: SendSMSInput {user, sms: {otp}}); phones are stored without "+".
        let body = br#"{"user":{"id":"8f5b1c9e-3b5b-4f7e-9d7a-0c6d7b7f1a2e","aud":"authenticated","role":"authenticated","email":"","phone":"12015550123","app_metadata":{"provider":"phone","providers":["phone"]},"user_metadata":{},"identities":[],"created_at":"2024-05-01T10:00:00Z","updated_at":"2024-05-01T10:00:00Z","is_anonymous":false},"sms":{"otp":"561166"}}"#;
        let c = cfg(
            "kind = \"supabase\"\npath = \"/s\"\nsecret_file = \"/x\"\ntemplate = \"Your code is {code}\"",
        );
        let m = map_json(&c, body).unwrap();
        assert_eq!(m.number, "+12015550123");
        assert_eq!(m.text, "Your code is 561166");
        assert_eq!(m.code.as_deref(), Some("561166"));
        let with_sms_phone =
            br#"{"user":{"phone":"447400000000"},"sms":{"otp":"1","phone":"+447400123456"}}"#;
        assert_eq!(
            map_json(&c, with_sms_phone).unwrap().number,
            "+447400123456"
        );
        assert_eq!(
            map_json(&c, br#"{"user":{"phone":"1"}}"#).unwrap_err(),
            MapError::Missing("sms.otp".into())
        );
        assert_eq!(map_json(&c, b"[1]").unwrap_err(), MapError::NotJson);
    }

    #[test]
    fn zitadel_http_sms_provider_payload() {
        let body = br#"{"contextInfo":{"eventType":"user.human.phone.code.added","provider":{"id":"1","description":"smsbridge"},"recipientPhoneNumber":"+12015550123"},"templateData":{"title":"","text":"Your code is 482910","subject":""},"args":{"code":"482910","expiry":"5m0s"}}"#;
        let c = cfg("kind = \"zitadel\"\npath = \"/z\"\nsecret_file = \"/x\"");
        let m = map_json(&c, body).unwrap();
        assert_eq!(
            (m.number.as_str(), m.text.as_str(), m.code.as_deref()),
            ("+12015550123", "Your code is 482910", Some("482910"))
        );
        let t = cfg(
            "kind = \"zitadel\"\npath = \"/z\"\nsecret_file = \"/x\"\ntemplate = \"Code: {code}\"",
        );
        assert_eq!(map_json(&t, body).unwrap().text, "Code: 482910");
    }

    #[test]
    fn pointers_template_and_types() {
        let c = cfg(
            "kind = \"json\"\npath = \"/j\"\nbearer_token_file = \"/x\"\nphone_pointer = \"/to/number\"\ntemplate = \"{code} is your code\"\ncode_pointer = \"/otp\"",
        );
        let m = map_json(&c, br#"{"to":{"number":"+4915123456789"},"otp":123456}"#).unwrap();
        assert_eq!(
            (m.number.as_str(), m.text.as_str()),
            ("+4915123456789", "123456 is your code")
        );
        assert_eq!(
            map_json(&c, br#"{"to":{"number":5},"otp":"1"}"#).unwrap_err(),
            MapError::NotString("/to/number".into())
        );
        assert_eq!(
            map_json(&c, br#"{"to":{},"otp":"1"}"#).unwrap_err(),
            MapError::Missing("/to/number".into())
        );
        let t = cfg(
            "kind = \"json\"\npath = \"/j\"\nbearer_token_file = \"/x\"\nphone_pointer = \"/p\"\ntext_pointer = \"/t\"",
        );
        let m = map_json(&t, br#"{"p":"+12015550123","t":"hello"}"#).unwrap();
        assert_eq!((m.text.as_str(), m.code), ("hello", None));
    }
}
