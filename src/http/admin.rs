//! The admin listener (loopback by default; never exposed publicly): `/healthz` (alive),
//! `/readyz` (a modem is ready), `/metrics` (Prometheus), `/api/status` (JSON) and `/`, a
//! server-rendered status page that refreshes itself and needs no JavaScript.

use std::fmt::Write;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::App;
use crate::metrics::Gauges;
use crate::modem::ModemStatus;
use crate::outbox::{MessageSummary, QueueCounts};

/// How many recent messages the status page and `/api/status` show.
const RECENT: usize = 50;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    if !app.outbox.writable() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the outbox cannot write (disk full or failing)\n",
        )
            .into_response()
    } else if app.readiness.outcomes_pending() > 0 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "send outcomes wait to be recorded\n",
        )
            .into_response()
    } else if app.readiness.any_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no modem is ready\n").into_response()
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let counts = app.outbox.counts();
    let gauges = Gauges {
        queue: counts.by_state(),
        modems: modem_statuses(&app)
            .into_iter()
            .map(|s| (s.name, s.state.as_str(), s.signal_dbm))
            .collect(),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&gauges),
    )
        .into_response()
}

pub async fn status_json(State(app): State<Arc<App>>) -> Response {
    let (counts, recent) = match queue_view(&app).await {
        Ok(view) => view,
        Err(status) => return status.into_response(),
    };
    let modems: Vec<_> = modem_statuses(&app).iter().map(modem_json).collect();
    let queue: serde_json::Map<_, _> = counts
        .by_state()
        .into_iter()
        .map(|(state, n)| (state.to_owned(), json!(n)))
        .collect();
    let messages: Vec<_> = recent.iter().map(message_json).collect();
    Json(json!({ "modems": modems, "queue": queue, "recent_messages": messages })).into_response()
}

pub async fn status_page(State(app): State<Arc<App>>) -> Response {
    let now = app.clock.now_ms() as i64;
    // A failing store still gets a page: the banner says so instead of a bare 500.
    let (counts, recent, store_failing) = match queue_view(&app).await {
        Ok((counts, recent)) => (counts, recent, false),
        Err(_) => (app.outbox.counts(), Vec::new(), true),
    };
    let per_minute = app
        .outbox
        .sent_per_minute(now - 3_600_000, now)
        .await
        .unwrap_or_default();
    let refusing = if store_failing {
        Some(
            "The outbox cannot be read: requests are probably failing too. Check the log (journalctl -u smsbridge -p warning) and the disk.",
        )
    } else if !app.readiness.accepting(now as u64) {
        Some(
            "Requests are refused with 503: no modem has been ready for longer than limits.no_modem_grace_secs.",
        )
    } else {
        None
    };
    let page = render_page(
        &modem_statuses(&app),
        &counts,
        &recent,
        &per_minute,
        &PageContext {
            now_ms: now,
            refusing,
        },
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// What the page says beside the figures: when it was rendered, and why requests are
/// refused, if they are.
pub struct PageContext<'a> {
    pub now_ms: i64,
    pub refusing: Option<&'a str>,
}

async fn queue_view(app: &App) -> Result<(QueueCounts, Vec<MessageSummary>), StatusCode> {
    match app.outbox.recent(RECENT).await {
        Ok(recent) => Ok((app.outbox.counts(), recent)),
        Err(error) => {
            tracing::error!(%error, "reading the outbox for the status failed");
            Err(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn modem_statuses(app: &App) -> Vec<ModemStatus> {
    app.modems
        .iter()
        .map(|m| m.status().borrow().clone())
        .collect()
}

fn modem_json(status: &ModemStatus) -> serde_json::Value {
    let id = &status.identity;
    json!({
        "name": status.name,
        "state": status.state.as_str(),
        "signal_dbm": status.signal_dbm,
        "operator": status.operator,
        "manufacturer": id.manufacturer,
        "model": id.model,
        "firmware": id.firmware,
        "imei": id.imei,
        "last_error": status.last_error,
        "fix": status.fix,
        "registration": status.registration,
        "smsc": status.smsc,
    })
}

/// A modem's problem with what to do about it, for the status page's error cell.
fn modem_problem(status: &ModemStatus) -> String {
    match (&status.last_error, &status.fix) {
        (Some(error), Some(fix)) => format!("{error}. Fix: {fix}"),
        (Some(error), None) => error.clone(),
        (None, _) => String::new(),
    }
}

fn message_json(m: &MessageSummary) -> serde_json::Value {
    json!({
        "id": m.id.0,
        "to": m.to_masked,
        "state": m.state.as_str(),
        "attempts": m.attempts,
        "parts": m.parts,
        "parts_sent": m.parts_sent,
        "modem": m.modem,
        "delivery": m.delivery.as_ref().map(|d| json!({
            "state": d.state.as_str(),
            "parts_delivered": d.parts_delivered,
            "parts_failed": d.parts_failed,
            "last_status": d.last_status,
            "last_report_at_ms": d.last_report_at_ms,
        })),
        "sent_at_ms": m.sent_at_ms,
        "created_at_ms": m.created_at_ms,
        "latency_ms": m.latency_ms(),
        "last_error": m.last_error,
    })
}

/// When the last part's delivery was reported, for a delivered message.
fn delivered_at(m: &MessageSummary) -> Option<i64> {
    let d = m.delivery.as_ref()?;
    (d.state == crate::outbox::DeliveryState::Delivered)
        .then_some(d.last_report_at_ms)
        .flatten()
}

/// The delivery column: "delivered", "failed", "pending 1/2" and so on.
fn delivery_text(m: &MessageSummary) -> String {
    match &m.delivery {
        None => String::new(),
        Some(d) => match d.state {
            crate::outbox::DeliveryState::Pending if d.parts_delivered > 0 => {
                format!("pending ({}/{} delivered)", d.parts_delivered, m.parts)
            }
            state => state.as_str().to_owned(),
        },
    }
}

/// Renders the status page. Every value from outside (modem answers, errors) is escaped.
pub fn render_page(
    modems: &[ModemStatus],
    counts: &QueueCounts,
    recent: &[MessageSummary],
    sent_per_minute: &[u64],
    context: &PageContext<'_>,
) -> String {
    let mut html = String::with_capacity(16 * 1024);
    html.push_str(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta http-equiv=\"refresh\" content=\"5\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>smsbridge status</title><style>",
        "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}",
        "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}",
        "table{border-collapse:collapse;background:#fff}",
        "th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left}",
        "th{background:#f0f0f0}.ready{color:#17702e;font-weight:bold}",
        ".failing,.disconnected{color:#b00020;font-weight:bold}.muted{color:#777}",
        ".queue span{display:inline-block;margin-right:1.5em}",
        ".banner{background:#b00020;color:#fff;padding:.6em 1em;font-weight:bold}",
        "</style></head><body><h1>smsbridge</h1>",
    ));
    if let Some(reason) = context.refusing {
        let _ = write!(
            html,
            "<p class=\"banner\" role=\"alert\">{}</p>",
            escape(reason)
        );
    }

    html.push_str("<h2>Modems</h2><table><tr><th>Name</th><th>State</th><th>Signal</th><th>Operator</th><th>Modem</th><th>IMEI</th><th>Last problem</th></tr>");
    if modems.is_empty() {
        html.push_str("<tr><td colspan=\"7\" class=\"muted\">No modem is configured.</td></tr>");
    }
    for m in modems {
        let id = &m.identity;
        let model = [
            id.manufacturer.as_deref(),
            id.model.as_deref(),
            id.firmware.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        // A modem that is gone has no signal or operator now; the last ones would mislead.
        let gone = matches!(
            m.state,
            crate::modem::ModemState::Disconnected | crate::modem::ModemState::Connecting
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.name),
            match m.signal_dbm {
                _ if gone => "—".to_owned(),
                Some(d) => format!("{d} dBm"),
                None => "unknown".to_owned(),
            },
            escape(if gone {
                "—"
            } else {
                m.operator.as_deref().unwrap_or("")
            }),
            escape(&model),
            escape(id.imei.as_deref().unwrap_or("")),
            escape(&modem_problem(m)),
            state = m.state.as_str(),
        );
    }
    html.push_str("</table>");

    html.push_str("<h2>Queue</h2><p class=\"queue\">");
    for (state, n) in counts.by_state() {
        let _ = write!(html, "<span>{state}: <b>{n}</b></span>");
    }
    html.push_str("</p>");

    html.push_str("<h2>Sends in the last hour</h2>");
    html.push_str(&sparkline(sent_per_minute));

    let _ = write!(html, "<h2>Last {RECENT} messages</h2>");
    html.push_str("<table><tr><th>#</th><th>To</th><th>State</th><th>Attempts</th><th>Parts</th><th>Modem</th><th>Delivery</th><th>Accepted</th><th>Sent</th><th>Delivered</th><th>Latency</th><th>Last error</th></tr>");
    if recent.is_empty() {
        html.push_str("<tr><td colspan=\"12\" class=\"muted\">No messages yet.</td></tr>");
    }
    for m in recent {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.id,
            escape(&m.to_masked),
            m.state.as_str(),
            m.attempts,
            m.parts,
            escape(m.modem.as_deref().unwrap_or("")),
            escape(&delivery_text(m)),
            utc_time(m.created_at_ms),
            m.sent_at_ms.map(utc_time).unwrap_or_default(),
            delivered_at(m).map(utc_time).unwrap_or_default(),
            m.latency_ms()
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default(),
            escape(m.last_error.as_deref().unwrap_or("")),
        );
    }
    let _ = write!(
        html,
        "</table><p class=\"muted\">Rendered {}. Refreshes every 5 seconds. Numbers are masked.</p></body></html>",
        utc_time(context.now_ms)
    );
    html
}

/// A bar chart of sends per minute as inline SVG: no script, no external file.
fn sparkline(per_minute: &[u64]) -> String {
    let max = per_minute.iter().copied().max().unwrap_or(0).max(1);
    let (width, height, bar) = (600, 80, 10);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"sends per minute, last hour\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\" style=\"background:#fff;border:1px solid #ddd\">",
        height + 16,
        height + 16
    );
    for (i, &n) in per_minute.iter().enumerate() {
        let h = (n * height / max).max(u64::from(n > 0));
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"#3b6fb6\"><title>{n}</title></rect>",
            i * bar,
            height - h,
            bar - 2,
        );
    }
    let total: u64 = per_minute.iter().sum();
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\" font-size=\"11\" fill=\"#555\">60 min ago</text><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#555\" text-anchor=\"end\">now · {total} sent · peak {max}/min</text></svg>",
        height + 13,
        width,
        height + 13
    );
    svg
}

/// Unix milliseconds as `2026-12-01 23:15:07 UTC` (proleptic Gregorian, from the days
/// since the epoch; no time-zone database on the box is needed).
fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modem::{ModemState, ModemStatus};

    #[test]
    fn a_message_row_shows_when_it_was_accepted_sent_and_delivered() {
        let message = MessageSummary {
            id: crate::outbox::MessageId(7),
            to_masked: "+44********56".to_owned(),
            state: crate::outbox::MessageState::Sent,
            attempts: 1,
            parts: 1,
            parts_sent: 1,
            delivery: Some(crate::outbox::DeliverySummary {
                state: crate::outbox::DeliveryState::Delivered,
                parts_delivered: 1,
                parts_failed: 0,
                last_status: Some(0),
                last_report_at_ms: Some(1_796_168_109_000),
            }),
            created_at_ms: 1_796_168_107_000,
            sent_at_ms: Some(1_796_168_108_000),
            final_at_ms: Some(1_796_168_108_000),
            modem: Some("modem0".to_owned()),
            node: None,
            last_error: None,
        };
        let context = PageContext {
            now_ms: 1_796_168_110_000,
            refusing: None,
        };
        let page = render_page(&[], &QueueCounts::default(), &[message], &[], &context);
        for time in [
            "23:35:07",
            "23:35:08",
            "23:35:09",
            "Rendered 2026-12-01 23:35:10 UTC",
        ] {
            assert!(page.contains(time), "{time} missing");
        }
    }

    #[test]
    fn times_are_utc_calendar_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1_796_168_107_000), "2026-12-01 23:35:07 UTC");
    }

    #[test]
    fn a_disconnected_modem_shows_no_stale_figures_and_a_refusal_has_a_banner() {
        let mut modem = ModemStatus::new("modem0");
        modem.state = ModemState::Disconnected;
        modem.signal_dbm = Some(-71);
        modem.operator = Some("Stale Operator".to_owned());
        let context = PageContext {
            now_ms: 1_796_168_107_000,
            refusing: Some("Requests are refused with 503: no modem"),
        };
        let page = render_page(
            &[modem.clone()],
            &QueueCounts::default(),
            &[],
            &[],
            &context,
        );
        assert!(page.contains("class=\"disconnected\">disconnected<"));
        assert!(
            !page.contains("-71 dBm") && !page.contains("Stale Operator"),
            "{page}"
        );
        assert!(page.contains("class=\"banner\"") && page.contains("refused with 503"));
        assert!(page.contains("Rendered 2026-12-01 23:35:07 UTC"));
        assert!(!page.contains("<script"));

        modem.state = ModemState::Ready;
        let calm = PageContext {
            now_ms: 0,
            refusing: None,
        };
        let page = render_page(&[modem], &QueueCounts::default(), &[], &[], &calm);
        assert!(page.contains("-71 dBm") && page.contains("Stale Operator"));
        assert!(!page.contains("class=\"banner\""));
    }
}
