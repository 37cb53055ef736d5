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
    let (counts, recent) = match queue_view(&app).await {
        Ok(view) => view,
        Err(status) => return status.into_response(),
    };
    let now = super::now_ms() as i64;
    let per_minute = app
        .outbox
        .sent_per_minute(now - 3_600_000, now)
        .await
        .unwrap_or_default();
    let page = render_page(&modem_statuses(&app), &counts, &recent, &per_minute);
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
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
        })),
        "created_at_ms": m.created_at_ms,
        "latency_ms": m.latency_ms(),
        "last_error": m.last_error,
    })
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
        "</style></head><body><h1>smsbridge</h1>",
    ));

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
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"{state}\">{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&m.name),
            m.signal_dbm
                .map(|d| format!("{d} dBm"))
                .unwrap_or_else(|| "unknown".into()),
            escape(m.operator.as_deref().unwrap_or("")),
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
    html.push_str("<table><tr><th>#</th><th>To</th><th>State</th><th>Attempts</th><th>Parts</th><th>Modem</th><th>Delivery</th><th>Latency</th><th>Last error</th></tr>");
    if recent.is_empty() {
        html.push_str("<tr><td colspan=\"9\" class=\"muted\">No messages yet.</td></tr>");
    }
    for m in recent {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.id,
            escape(&m.to_masked),
            m.state.as_str(),
            m.attempts,
            m.parts,
            escape(m.modem.as_deref().unwrap_or("")),
            escape(&delivery_text(m)),
            m.latency_ms()
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default(),
            escape(m.last_error.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</table><p class=\"muted\">Refreshes every 5 seconds. Numbers are masked.</p></body></html>");
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
