//! Where log lines go. Under systemd, straight to the journal through its native datagram
//! protocol (our own span-aware layer, [`JournalLayer`]): the level becomes `PRIORITY`, and the
//! fields of the event and of every span it happens in become journal fields, so a modem
//! worker's records carry `MODEM=modem0` and `journalctl -u smsbridge MODEM=modem0` works.
//! The outbox row number goes in `SMSBRIDGE_MESSAGE_ID`: journald reserves `MESSAGE_ID` for
//! 128-bit catalogue ids. Elsewhere, readable lines on stderr. `RUST_LOG` filters both
//! (default `info`).
//!
//! What is logged is decided at the call sites, which never pass an OTP code, a message text
//! or a full phone number (numbers go through `crate::mask::phone`).

use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// journald's native socket.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Installs the global subscriber: the journal when stderr is connected to it (as under
/// systemd), else human-readable stderr.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journal = stderr_is_journal()
        .then(|| JournalLayer::connect(Path::new(JOURNAL_SOCKET)).ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match journal {
        Some(journal) => registry.with(journal).try_init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_target(false)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    // A second init (tests calling twice) keeps the first subscriber; nothing to report.
    let _ = installed;
}

/// systemd sets `JOURNAL_STREAM=<device>:<inode>` for a unit whose stderr is the journal;
/// it only counts when stderr is still that stream (not redirected by a wrapper).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Sends each event to journald as one datagram in its native protocol, with the fields
/// of the enclosing spans (root first) and of the event itself.
pub struct JournalLayer {
    socket: UnixDatagram,
    path: PathBuf,
}

impl JournalLayer {
    /// A layer sending to the journal socket at `path` (the real one, or a test's).
    pub fn connect(path: &Path) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        // Fails early (and we fall back to stderr) when nothing listens there.
        socket.connect(path)?;
        Ok(Self {
            socket,
            path: path.to_owned(),
        })
    }

    fn record(&self, event: &Event<'_>, spans: &[(String, String)]) -> Vec<u8> {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (key, value) in &fields.pairs {
            let _ = write!(message, " {key}={value}");
        }
        let meta = event.metadata();
        let mut buf = Vec::with_capacity(256);
        put_field(&mut buf, "MESSAGE", message.as_bytes());
        put_field(&mut buf, "PRIORITY", priority(*meta.level()).as_bytes());
        put_field(&mut buf, "SYSLOG_IDENTIFIER", b"smsbridge");
        put_field(&mut buf, "TARGET", meta.target().as_bytes());
        if let Some(file) = meta.file() {
            put_field(&mut buf, "CODE_FILE", file.as_bytes());
        }
        if let Some(line) = meta.line() {
            put_field(&mut buf, "CODE_LINE", line.to_string().as_bytes());
        }
        // The innermost value of a name wins: a field of the event over the same field of
        // its span (dispatch logs `modem` inside spans that may carry it too).
        let named: Vec<(String, &str)> = spans
            .iter()
            .chain(&fields.pairs)
            .map(|(key, value)| (journal_name(key), value.as_str()))
            .collect();
        for (i, (name, value)) in named.iter().enumerate() {
            if !named[i + 1..].iter().any(|(later, _)| later == name) {
                put_field(&mut buf, name, value.as_bytes());
            }
        }
        buf
    }
}

impl<S> Layer<S> for JournalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields.pairs));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(pairs)) => pairs.extend(fields.pairs),
            None => extensions.insert(SpanFields(fields.pairs)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(pairs)) = span.extensions().get::<SpanFields>() {
                    spans.extend(pairs.iter().cloned());
                }
            }
        }
        let record = self.record(event, &spans);
        // The journal socket is datagram-based; a lost line must not stop the service.
        if self.socket.send(&record).is_err() {
            let _ = self.socket.send_to(&record, &self.path);
        }
    }
}

/// A span's own fields, kept in the registry for the events inside it.
struct SpanFields(Vec<(String, String)>);

/// tracing levels to syslog priorities, as journald filters them (`journalctl -p err`).
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        Level::DEBUG | Level::TRACE => "7",
    }
}

/// A tracing field name as a journal field: upper case, `[A-Z0-9_]`, no leading `_` (those
/// are journald's trusted fields). Ours that would collide with a field journald gives a
/// meaning (`message_id` above all) get an `SMSBRIDGE_` prefix.
fn journal_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' | '0'..='9' => c,
            _ => '_',
        })
        .collect();
    out = out.trim_start_matches('_').to_owned();
    const RESERVED: &[&str] = &[
        "MESSAGE",
        "MESSAGE_ID",
        "PRIORITY",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
        "ERRNO",
        "INVOCATION_ID",
        "USER_INVOCATION_ID",
        "SYSLOG_FACILITY",
        "SYSLOG_IDENTIFIER",
        "SYSLOG_PID",
        "SYSLOG_TIMESTAMP",
        "SYSLOG_RAW",
        "DOCUMENTATION",
        "TID",
        "UNIT",
        "USER_UNIT",
        "TARGET",
    ];
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || RESERVED.contains(&&*out)
    {
        out.insert_str(0, "SMSBRIDGE_");
    }
    out
}

/// Appends one field: `NAME=value\n`, or, for a value with a newline, the length-prefixed
/// form `NAME\n<u64 LE length><value>\n`.
fn put_field(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// Collects an event's (or span's) message and its other fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs.push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.pairs
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Parses one native-protocol datagram into its fields (both encodings).
    fn parse(mut data: &[u8]) -> HashMap<String, Vec<u8>> {
        let mut fields = HashMap::new();
        while !data.is_empty() {
            let end = data.iter().position(|&b| b == b'\n').expect("line end");
            let line = &data[..end];
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                let name = String::from_utf8(line[..eq].to_vec()).unwrap();
                assert!(fields.insert(name, line[eq + 1..].to_vec()).is_none());
                data = &data[end + 1..];
            } else {
                let name = String::from_utf8(line.to_vec()).unwrap();
                let rest = &data[end + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                fields.insert(name, rest[8..8 + len].to_vec());
                assert_eq!(rest[8 + len], b'\n');
                data = &rest[9 + len..];
            }
        }
        fields
    }

    fn text<'a>(fields: &'a HashMap<String, Vec<u8>>, name: &str) -> Option<&'a str> {
        fields.get(name).map(|v| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn records_carry_span_fields_our_message_id_and_the_priority() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.socket");
        let journal = UnixDatagram::bind(&path).unwrap();
        let layer = JournalLayer::connect(&path).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("modem", modem = %"modem0");
            let _inside = span.enter();
            tracing::info!(state = "ready", "modem ready");
            let at = tracing::debug_span!("at", modem = %"modem0-at");
            at.in_scope(|| tracing::warn!(modem = "modem0-event", "inner wins"));
            tracing::error!(message_id = 42, reason = "line\nbreak", "message failed");
        });
        let mut buf = vec![0u8; 65536];
        let n = journal.recv(&mut buf).unwrap();
        let ready = parse(&buf[..n]);
        assert_eq!(text(&ready, "MODEM"), Some("modem0"));
        assert_eq!(text(&ready, "STATE"), Some("ready"));
        assert_eq!(text(&ready, "MESSAGE"), Some("modem ready state=ready"));
        assert_eq!(text(&ready, "PRIORITY"), Some("6"));
        assert_eq!(text(&ready, "SYSLOG_IDENTIFIER"), Some("smsbridge"));
        assert!(!ready.contains_key("SMSBRIDGE_MESSAGE_ID"));

        let n = journal.recv(&mut buf).unwrap();
        let inner = parse(&buf[..n]);
        assert_eq!(text(&inner, "MODEM"), Some("modem0-event"));
        assert_eq!(text(&inner, "PRIORITY"), Some("4"));

        let n = journal.recv(&mut buf).unwrap();
        let failed = parse(&buf[..n]);
        assert_eq!(text(&failed, "MODEM"), Some("modem0"));
        assert_eq!(text(&failed, "SMSBRIDGE_MESSAGE_ID"), Some("42"));
        assert!(!failed.contains_key("MESSAGE_ID"));
        assert_eq!(text(&failed, "PRIORITY"), Some("3"));
        assert_eq!(text(&failed, "REASON"), Some("line\nbreak"));
        drop(dir);
    }

    #[test]
    fn field_names_follow_journal_rules() {
        assert_eq!(journal_name("modem"), "MODEM");
        assert_eq!(journal_name("message_id"), "SMSBRIDGE_MESSAGE_ID");
        assert_eq!(journal_name("priority"), "SMSBRIDGE_PRIORITY");
        assert_eq!(journal_name("_pid"), "PID");
        assert_eq!(journal_name("retry.in-ms"), "RETRY_IN_MS");
        assert_eq!(journal_name("2g"), "SMSBRIDGE_2G");
    }
}
