//! The handlers of the `[[endpoint]]` tables: authenticate over the raw body, map the
//! payload, hand it to the shared pipeline (`crate::http::public::submit`), answer in the
//! platform's convention. Twilio's Messages API also answers `GET …/Messages/{Sid}.json`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::config::{Endpoint, Kind, MAX_SKEW, TWILIO_PREFIX};
use super::map::{self, MapError, Mapped};
use super::verify::{self, AuthError, Credentials};
use crate::http::App;
use crate::http::error::ApiError;
use crate::http::public::{MAX_BODY_BYTES, Submission, submit};
use crate::outbox::{DeliveryState, MessageId, MessageState};

type Shared = (Arc<App>, Arc<Endpoint>);

/// The routes of every endpoint (no fallback: OwnID's router keeps it).
pub fn router(app: Arc<App>, endpoints: Vec<Endpoint>) -> Router {
    let mut router = Router::new();
    for endpoint in endpoints {
        let route = endpoint.config.route();
        let endpoint = Arc::new(endpoint);
        let state: Shared = (app.clone(), endpoint.clone());
        router = router.route(&route, post(accept).with_state(state.clone()));
        if endpoint.kind == Kind::Twilio {
            let sid = endpoint.config.account_sid.clone().unwrap_or_default();
            router = router.route(
                &format!("{TWILIO_PREFIX}{sid}/Messages/{{file}}"),
                get(twilio_status).with_state(state),
            );
        }
    }
    router
}

/// A refusal, with the Twilio error code it maps to for the `twilio` kind.
struct Refusal {
    error: ApiError,
    twilio_code: u32,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        let twilio_code = match &error {
            ApiError::Unauthorized(_) => 20003,
            ApiError::Unprocessable(m) if m.starts_with("To") => 21211,
            ApiError::Unprocessable(m) if m.starts_with("Body is empty") => 21602,
            ApiError::Unprocessable(_) => 21617,
            ApiError::BadRequest(_) => 21602,
            ApiError::TooLarge { .. } => 21617,
            ApiError::RateLimited { .. } => 20429,
            ApiError::Unavailable(_) => 20503,
            ApiError::Internal => 20500,
            ApiError::NotFound(_) => 20404,
        };
        Refusal { error, twilio_code }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        ApiError::Unauthorized(error.to_string()).into()
    }
}

impl From<MapError> for Refusal {
    fn from(error: MapError) -> Self {
        ApiError::BadRequest(error.to_string()).into()
    }
}

async fn accept(State((app, endpoint)): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let result = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => accept_bytes(&app, &endpoint, &headers, bytes).await,
        Err(_) => Err(ApiError::TooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into()),
    };
    match result {
        Ok((response, duplicate)) => {
            app.metrics.endpoint_request(
                &endpoint.name,
                if duplicate { "duplicate" } else { "accepted" },
            );
            response
        }
        Err(refusal) => {
            app.metrics
                .endpoint_request(&endpoint.name, refusal.error.outcome());
            tracing::info!(endpoint = %endpoint.name, status = refusal.error.status().as_u16(), reason = %refusal.error.message(), "request refused");
            refuse(&endpoint, refusal)
        }
    }
}

fn refuse(endpoint: &Endpoint, refusal: Refusal) -> Response {
    if endpoint.kind != Kind::Twilio {
        return refusal.error.into_response();
    }
    let status = refusal.error.status();
    let body = serde_json::json!({
        "code": refusal.twilio_code,
        "message": refusal.error.message(),
        "more_info": format!("https://www.twilio.com/docs/errors/{}", refusal.twilio_code),
        "status": status.as_u16(),
    });
    // Keep the Retry-After the generic answer sets (429, 503).
    let retry_after = refusal
        .error
        .into_response()
        .headers()
        .get(header::RETRY_AFTER)
        .cloned();
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates the request over the raw bytes; nothing is parsed before this passes.
fn authenticate(
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
) -> Result<(), AuthError> {
    match &endpoint.credentials {
        Credentials::StandardWebhooks(keys) => verify::verify_standard_webhooks(
            keys,
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
            body,
            now_ms,
            MAX_SKEW,
        )
        .map(|_| ()),
        Credentials::Zitadel(keys) => verify::verify_zitadel(
            keys,
            header(headers, "zitadel-signature"),
            body,
            now_ms,
            MAX_SKEW,
        ),
        credentials => verify::verify_authorization(credentials, header(headers, "authorization")),
    }
}

/// The dedup key: a hash of endpoint, number and code (or text), never the code itself.
fn dedup_key(endpoint: &str, number: &str, code: Option<&str>, text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        b"smsbridge-dedup-v1".as_slice(),
        endpoint.as_bytes(),
        number.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    match code {
        Some(code) => {
            h.update(b"c");
            h.update(code.as_bytes());
        }
        None => {
            h.update(b"t");
            h.update(text.as_bytes());
        }
    }
    h.finalize().into()
}

async fn accept_bytes(
    app: &App,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(Response, bool), Refusal> {
    let now_ms = app.clock.now_ms();
    authenticate(endpoint, headers, &body, app.clock.wall_ms())?;
    let (mapped, number_field, text_field) = match endpoint.kind {
        Kind::Twilio => (twilio_form(&body)?, "To", "Body"),
        _ => (map::map_json(&endpoint.config, &body)?, "phone", "text"),
    };
    let Mapped { number, text, code } = mapped;
    let dedup = (!endpoint.dedup.is_zero()).then(|| {
        (
            dedup_key(&endpoint.name, &number, code.as_deref(), &text),
            (now_ms + endpoint.dedup.as_millis() as u64) as i64,
        )
    });
    let echoed = text.clone();
    let submitted = submit(
        app,
        Submission {
            number: &number,
            text,
            number_field,
            text_field,
            signature: None,
            dedup,
            now_ms,
        },
    )
    .await?;
    let response = match endpoint.kind {
        Kind::Supabase | Kind::StandardWebhooks => {
            (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()
        }
        Kind::Zitadel => StatusCode::OK.into_response(),
        Kind::Json => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "id": submitted.id.0.to_string() })),
        )
            .into_response(),
        Kind::Twilio => {
            let sid = twilio_sid(endpoint, submitted.id);
            let resource = twilio_resource(
                endpoint,
                &sid,
                submitted.number.as_str(),
                &echoed,
                "queued",
                submitted.parts,
                now_ms,
            );
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
    };
    Ok((response, submitted.duplicate))
}

/// Reads Twilio's form: `To` and `Body` (`From`, `StatusCallback` and the rest ignored).
fn twilio_form(body: &[u8]) -> Result<Mapped, Refusal> {
    let mut to = None;
    let mut text = None;
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "To" => to = Some(value.into_owned()),
            "Body" => text = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(to) = to.filter(|t| !t.is_empty()) else {
        return Err(Refusal {
            error: ApiError::BadRequest("A 'To' phone number is required.".to_owned()),
            twilio_code: 21604,
        });
    };
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Err(Refusal {
            error: ApiError::BadRequest("Message body is required.".to_owned()),
            twilio_code: 21602,
        });
    };
    Ok(Mapped {
        number: to,
        text,
        code: None,
    })
}

type HmacSha256 = Hmac<Sha256>;

fn sid_tag(endpoint: &Endpoint, id: i64) -> [u8; 8] {
    let key = match &endpoint.credentials {
        Credentials::Basic { password, .. } => password.as_bytes(),
        _ => b"".as_slice(),
    };
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new_from_slice(b"\0").expect("non-empty"));
    mac.update(b"smsbridge-twilio-sid");
    mac.update(&id.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

/// A Message SID, `SM` + 32 hex: a tag keyed by the auth token, then the outbox id. The
/// tag makes SIDs unguessable without a table: `GET` recomputes it.
pub fn twilio_sid(endpoint: &Endpoint, id: MessageId) -> String {
    format!("SM{}{:016x}", verify::hex(&sid_tag(endpoint, id.0)), id.0)
}

fn parse_sid(endpoint: &Endpoint, sid: &str) -> Option<MessageId> {
    if !super::config::is_sid(sid, "SM") {
        return None;
    }
    let id = i64::from_str_radix(&sid[18..], 16).ok()?;
    let given = &sid[2..18];
    let expected = verify::hex(&sid_tag(endpoint, id));
    verify::secret_eq(given.to_ascii_lowercase().as_bytes(), expected.as_bytes())
        .then_some(MessageId(id))
}

fn twilio_resource(
    endpoint: &Endpoint,
    sid: &str,
    to: &str,
    body: &str,
    status: &str,
    parts: usize,
    created_ms: u64,
) -> serde_json::Value {
    let account = endpoint.config.account_sid.clone().unwrap_or_default();
    let date = rfc2822(created_ms / 1000);
    serde_json::json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": date,
        "date_updated": date,
        "date_sent": null,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": null,
        "messaging_service_sid": null,
        "num_media": "0",
        "num_segments": parts.to_string(),
        "price": null,
        "price_unit": null,
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "media": format!("{TWILIO_PREFIX}{account}/Messages/{sid}/Media.json"),
        },
        "to": to,
        "uri": format!("{TWILIO_PREFIX}{account}/Messages/{sid}.json"),
    })
}

/// `GET …/Messages/{Sid}.json`: the message's status from the outbox and its delivery
/// reports, in Twilio's words.
async fn twilio_status(
    State((app, endpoint)): State<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) =
        verify::verify_authorization(&endpoint.credentials, header(&headers, "authorization"))
    {
        return refuse(&endpoint, e.into());
    }
    let not_found = || {
        refuse(
            &endpoint,
            Refusal {
                error: ApiError::NotFound("The requested resource was not found".to_owned()),
                twilio_code: 20404,
            },
        )
    };
    let Some(id) = file
        .strip_suffix(".json")
        .and_then(|sid| parse_sid(&endpoint, sid))
    else {
        return not_found();
    };
    let summary = match app.outbox.message(id).await {
        Ok(Some(summary)) => summary,
        Ok(None) => return not_found(),
        Err(error) => {
            tracing::error!(%error, "reading a message failed");
            return refuse(&endpoint, ApiError::Internal.into());
        }
    };
    let status = match (summary.state, summary.delivery.map(|d| d.state)) {
        (MessageState::Queued, _) => "queued",
        (MessageState::Sending, _) => "sending",
        (MessageState::Sent, Some(DeliveryState::Delivered)) => "delivered",
        (MessageState::Sent, Some(DeliveryState::Failed)) => "undelivered",
        (MessageState::Sent, _) => "sent",
        (MessageState::Failed | MessageState::Expired | MessageState::Unknown, _) => "failed",
    };
    let sid = twilio_sid(&endpoint, id);
    // The number is masked and the text gone once final; while queued the store still has
    // them but the status page's summary carries only the masked form.
    let mut resource = twilio_resource(
        &endpoint,
        &sid,
        &summary.to_masked,
        "",
        status,
        usize::from(summary.parts),
        summary.created_at_ms.max(0) as u64,
    );
    if let Some(sent) = summary.sent_at_ms {
        resource["date_sent"] = rfc2822(sent.max(0) as u64 / 1000).into();
    }
    if status == "failed" || status == "undelivered" {
        resource["error_code"] = 30008.into();
        resource["error_message"] = summary.last_error.unwrap_or_default().into();
    }
    (StatusCode::OK, axum::Json(resource)).into_response()
}

/// Unix seconds as RFC 2822 in UTC (`Tue, 01 Dec 2026 23:01:52 +0000`), as Twilio writes.
pub fn rfc2822(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm, from its description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc2822_dates() {
        assert_eq!(super::rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            super::rfc2822(1_796_166_112),
            "Tue, 01 Dec 2026 23:01:52 +0000"
        );
        assert_eq!(
            super::rfc2822(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }
}
