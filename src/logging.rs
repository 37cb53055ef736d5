//! Where log lines go. Under systemd, straight to the journal (systemd-journal-logger):
//! the level becomes the priority and each tracing field becomes a structured journal field
//! (`MODEM=modem0`, `MESSAGE_ID=42`, `STATE=ready`), so `journalctl -u smsbridge MODEM=modem0`
//! works. Elsewhere, readable lines on stderr. `RUST_LOG` filters both (default `info`).
//!
//! What is logged is decided at the call sites, which never pass an OTP code, a message text
//! or a full phone number (numbers go through `crate::mask::phone`).

use std::fmt::Write;

use systemd_journal_logger::JournalLog;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber: the journal when stderr is connected to it (as under
/// systemd), else human-readable stderr.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journal = systemd_journal_logger::connected_to_journal()
        .then(|| JournalLog::new().ok())
        .flatten();
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match journal {
        Some(journal) => registry
            .with(JournalLayer {
                journal: journal.with_syslog_identifier("smsbridge".to_owned()),
            })
            .try_init(),
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

/// Sends each event to the journal as one record with its fields as key-values.
struct JournalLayer {
    journal: JournalLog,
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        for (key, value) in &fields.pairs {
            let _ = write!(message, " {key}={value}");
        }
        let meta = event.metadata();
        let pairs: Vec<(&str, &str)> = fields
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // The journal socket is datagram-based; a lost line must not stop the service.
        let _ = self.journal.journal_send(
            &log::Record::builder()
                .level(log_level(*meta.level()))
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .key_values(&pairs)
                .args(format_args!("{message}"))
                .build(),
        );
    }
}

fn log_level(level: Level) -> log::Level {
    match level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        Level::TRACE => log::Level::Trace,
    }
}

/// Collects an event's message and its other fields as text.
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

    #[test]
    fn collects_the_message_and_the_fields() {
        type Seen = Vec<(String, Vec<(String, String)>)>;
        struct Capture(std::sync::Arc<std::sync::Mutex<Seen>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                let mut fields = Fields::default();
                event.record(&mut fields);
                self.0.lock().unwrap().push((fields.message, fields.pairs));
            }
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Capture(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(modem = "modem0", message_id = 42, "message sent");
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "message sent");
        assert_eq!(
            seen[0].1,
            vec![
                ("modem".to_owned(), "modem0".to_owned()),
                ("message_id".to_owned(), "42".to_owned())
            ]
        );
    }
}
