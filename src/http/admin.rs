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
    if !app.readiness.store_reachable() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the message store (PostgreSQL) cannot be reached\n",
        )
            .into_response()
    } else if !app.outbox.writable() {
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
    let wal = app.outbox.wal_stats();
    let gauges = Gauges {
        queue: counts.by_state(),
        modems: modem_statuses(&app)
            .into_iter()
            .map(|s| (s.name, s.state.as_str(), s.signal_dbm))
            .collect(),
        fleet: match fleet_view(&app).await {
            Ok(boxes) => {
                let now = app.clock.wall_ms() as i64;
                boxes
                    .into_iter()
                    .map(|b| (b.name, (now - b.last_seen_ms).max(0) as f64 / 1000.0))
                    .collect()
            }
            Err(_) => Vec::new(),
        },
        // One reading, so the commit counter and the histogram's count agree.
        outbox_commits: wal.map(|w| w.commits),
        outbox_wal: wal,
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
    let mut body = json!({ "modems": modems, "queue": queue, "recent_messages": messages });
    if app.outbox.backend_name() == "postgres" {
        // The fleet: every box with its modems; `queue` above is the whole fleet's.
        body["node"] = json!(app.node);
        body["backend"] = json!("postgres");
        body["fleet"] = match fleet_view(&app).await {
            Ok(boxes) => fleet_json(&boxes),
            Err(error) => {
                tracing::error!(%error, "reading the fleet for the status failed");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
    }
    Json(body).into_response()
}

/// `GET /api/messages/{id}`: one message's summary (masked number, no text), with the box
/// that made its last attempt (`node`) and the modem: what `smsbridge message ID` prints.
pub async fn message_by_id(
    State(app): State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "a message id is a decimal number" })),
        )
            .into_response();
    };
    match app.outbox.message(crate::outbox::MessageId(id)).await {
        Ok(Some(summary)) => Json(message_json(&summary)).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no message {id} (never accepted, or purged)") })),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "reading a message failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                Json(json!({ "error": "the message store cannot be read now" })),
            )
                .into_response()
        }
    }
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
    let refusing = if !app.readiness.store_reachable() {
        Some(
            "PostgreSQL cannot be reached: requests are refused with 503 and sends wait. The box recovers by itself when the database returns; check the database and the network.",
        )
    } else if store_failing {
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
    let fleet = fleet_view(&app).await.unwrap_or_default();
    let page = render_page(
        &modem_statuses(&app),
        &counts,
        &recent,
        &per_minute,
        &PageContext {
            now_ms: now,
            refusing,
            fleet: &fleet,
        },
    );
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// One box of the fleet as `/api/status` and the page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetBox {
    pub name: String,
    pub last_seen_ms: i64,
    /// This box.
    pub this: bool,
    /// Messages it was sending at its last heartbeat.
    pub sending: u64,
    /// Its modems as its last heartbeat described them ([`modems_brief_json`]).
    pub modems: Vec<BriefModem>,
}

/// A modem of some box of the fleet, as its heartbeat carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct BriefModem {
    pub name: String,
    pub state: String,
    pub signal_dbm: Option<i64>,
}

/// This box's modems in brief (name, state, signal) as the JSON its heartbeat carries to
/// the other boxes of the fleet.
pub fn modems_brief_json(app: &App) -> String {
    let modems: Vec<_> = modem_statuses(app)
        .iter()
        .map(|s| json!({ "name": s.name, "state": s.state.as_str(), "signal_dbm": s.signal_dbm }))
        .collect();
    serde_json::Value::Array(modems).to_string()
}

/// Reads a heartbeat's modem list back; what does not parse (a newer box's fields, a
/// damaged row) is shown as no modem rather than failing the page.
pub fn parse_brief_modems(text: &str) -> Vec<BriefModem> {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|m| {
            Some(BriefModem {
                name: m.get("name")?.as_str()?.to_owned(),
                state: m
                    .get("state")
                    .and_then(|s| s.as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                signal_dbm: m.get("signal_dbm").and_then(serde_json::Value::as_i64),
            })
        })
        .collect()
}

/// Every box of the fleet, this one first then by name. Empty on a single box (SQLite),
/// whose page stays as it was.
pub async fn fleet_view(app: &App) -> Result<Vec<FleetBox>, crate::outbox::OutboxError> {
    if app.outbox.backend_name() != "postgres" {
        return Ok(Vec::new());
    }
    let mut boxes: Vec<FleetBox> = app
        .outbox
        .fleet()
        .await?
        .into_iter()
        .map(|n| FleetBox {
            modems: parse_brief_modems(&n.modems),
            name: n.name,
            last_seen_ms: n.last_seen_ms,
            this: n.this,
            sending: n.queue_local,
        })
        .collect();
    boxes.sort_by(|a, b| b.this.cmp(&a.this).then_with(|| a.name.cmp(&b.name)));
    Ok(boxes)
}

fn fleet_json(boxes: &[FleetBox]) -> serde_json::Value {
    serde_json::Value::Array(
        boxes
            .iter()
            .map(|b| {
                json!({
                    "name": b.name,
                    "last_seen_ms": b.last_seen_ms,
                    "this": b.this,
                    "sending": b.sending,
                    "modems": b.modems.iter().map(|m| json!({
                        "name": m.name,
                        "state": m.state,
                        "signal_dbm": m.signal_dbm,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// What the page says beside the figures: when it was rendered, and why requests are
/// refused, if they are.
pub struct PageContext<'a> {
    pub now_ms: i64,
    pub refusing: Option<&'a str>,
    /// Fleet mode: every box; empty on a single box.
    pub fleet: &'a [FleetBox],
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
        "node": m.node,
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

    if !context.fleet.is_empty() {
        html.push_str(
            "<h2>Fleet</h2><table><tr><th>Box</th><th>Last seen</th><th>Modems</th></tr>",
        );
        for b in context.fleet {
            let ago = (context.now_ms - b.last_seen_ms).max(0) / 1000;
            let modems = if b.modems.is_empty() {
                "<span class=\"muted\">none</span>".to_owned()
            } else {
                b.modems
                    .iter()
                    .map(|m| {
                        format!(
                            "{} <span class=\"{state}\">{state}</span>{}",
                            escape(&m.name),
                            m.signal_dbm
                                .map(|d| format!(" {d} dBm"))
                                .unwrap_or_default(),
                            state = escape(&m.state),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = write!(
                html,
                "<tr><td>{}{}</td><td>{} ({ago} s ago)</td><td>{modems}</td></tr>",
                escape(&b.name),
                if b.this {
                    " <span class=\"muted\">(this box)</span>"
                } else {
                    ""
                },
                utc_time(b.last_seen_ms),
            );
        }
        html.push_str("</table>");
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

    html.push_str(if context.fleet.is_empty() {
        "<h2>Queue</h2><p class=\"queue\">"
    } else {
        "<h2>Queue (the whole fleet)</h2><p class=\"queue\">"
    });
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
            escape(&match (&m.node, &m.modem) {
                // In a fleet the box matters as much as the modem.
                (Some(node), Some(modem)) if !context.fleet.is_empty() => {
                    format!("{node} / {modem}")
                }
                (_, modem) => modem.clone().unwrap_or_default(),
            }),
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
            fleet: &[],
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
    fn the_page_shows_every_box_of_the_fleet_with_its_modems() {
        let fleet = vec![
            FleetBox {
                name: "pi-a".into(),
                last_seen_ms: 1_796_168_105_000,
                this: true,
                sending: 1,
                modems: parse_brief_modems(
                    r#"[{"name":"modem0","state":"ready","signal_dbm":-71}]"#,
                ),
            },
            FleetBox {
                name: "pi-<b>".into(),
                last_seen_ms: 1_796_168_100_000,
                this: false,
                sending: 0,
                modems: parse_brief_modems("not json"),
            },
        ];
        let context = PageContext {
            now_ms: 1_796_168_110_000,
            refusing: None,
            fleet: &fleet,
        };
        let page = render_page(&[], &QueueCounts::default(), &[], &[], &context);
        assert!(page.contains("<h2>Fleet</h2>"), "{page}");
        assert!(page.contains("pi-a <span class=\"muted\">(this box)</span>"));
        assert!(page.contains("modem0 <span class=\"ready\">ready</span> -71 dBm"));
        assert!(page.contains("pi-&lt;b&gt;") && !page.contains("pi-<b>"));
        assert!(page.contains("(5 s ago)") && page.contains("(10 s ago)"));
        assert!(page.contains("Queue (the whole fleet)"));
        let single = PageContext {
            fleet: &[],
            ..context
        };
        let page = render_page(&[], &QueueCounts::default(), &[], &[], &single);
        assert!(!page.contains("Fleet"));
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
            fleet: &[],
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
            fleet: &[],
        };
        let page = render_page(&[modem], &QueueCounts::default(), &[], &[], &calm);
        assert!(page.contains("-71 dBm") && page.contains("Stale Operator"));
        assert!(!page.contains("class=\"banner\""));
    }
}
