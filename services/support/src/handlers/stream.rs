//! `GET /api/notifications/stream`: Server-Sent Events, one default (`message`) event per new
//! notification with the notification JSON as its data and its id as the event id;
//! keep-alives are comments only (`: ping`), so the panel never sees a blank notification.
//!
//! Decisions:
//! - Authenticated once, at connect (Bearer or `?token=`, since `EventSource` cannot set
//!   headers). The stream then outlives the access token's expiry (an `EventSource` cannot
//!   swap its URL's token), but not a revocation: a logout, revoked session or deactivated
//!   account ends it at the next event or keep-alive.
//! - `Last-Event-ID` (sent by `EventSource` when it reconnects; or `?last_event_id=`) replays
//!   what was missed since that id, up to [`REPLAY_MAX`].
//! - At most `SSE_MAX_STREAMS_PER_USER` streams per user and instance: a new stream beyond it
//!   ends that user's oldest one (a panel moving between pages or opening a tab must never be
//!   locked out by streams it left behind). At most `SSE_MAX_STREAMS` streams per instance:
//!   beyond it, 503 `too_many_streams` with `Retry-After`.
//! - A stream leaves the registry when actix drops its body: at once when the client closes
//!   the connection (the server does not keep half-closed connections, see zimmer-service),
//!   at the next failing keep-alive write (`SSE_KEEPALIVE_SECS`, default 5) otherwise; a
//!   client that vanished without a trace is replaced by the user's next stream anyway.
//! - A stream that ends on purpose (the instance drains, or the user's newer stream took its
//!   place) says `id: <last id>` in its last block, which sets the browser's `Last-Event-ID`
//!   without dispatching an event, so the reconnect (to another instance when draining)
//!   replays exactly what came after, even if this stream never carried an event.

use std::{collections::VecDeque, convert::Infallible};

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER},
    web::{self, Bytes},
};
use serde::Deserialize;
use tokio::{sync::broadcast::error::RecvError, time::MissedTickBehavior};
use zimmer_db::DbPool;
use zimmer_http::{ApiError, HttpResult};
use zimmer_jwt::{Claims, Revocations, bearer_token};
use zimmer_service::Draining;

use crate::{
    AppState,
    domain::views::NotificationView,
    queries::notifications as nq,
    workers::live::{Push, Refused, StreamLimits, Subscription},
};

/// How many missed notifications a reconnect replays.
pub const REPLAY_MAX: i64 = 100;
/// Ids remembered per stream, so a notification that arrives both live and from a re-read is
/// sent once.
const REMEMBERED: usize = 256;
/// Reconnect delay (ms) after a newer stream of the same user took this one's place: long, so
/// a user with more tabs than the cap does not make them take turns every few seconds.
const RETRY_AFTER_EVICTION_MS: u64 = 30_000;
/// Reconnect delay (ms) after a drain, spread over this range so an instance's clients do not
/// all arrive at the other instances at the same moment.
const RETRY_AFTER_DRAIN_MS: (u64, u64) = (500, 3_000);

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub last_event_id: Option<i64>,
}

struct Live {
    sub: Subscription,
    pending: VecDeque<Bytes>,
    ticker: tokio::time::Interval,
    last_id: i64,
    sent: VecDeque<i64>,
    pool: DbPool,
    claims: Claims,
    revocations: Revocations,
    draining: Draining,
    done: bool,
}

impl Live {
    fn revoked(&mut self) -> bool {
        if self.revocations.is_revoked(&self.claims) {
            self.done = true;
        }
        self.done
    }

    fn push(&mut self, v: &NotificationView) {
        if self.sent.contains(&v.id) || self.revoked() {
            return;
        }
        // serde_json escapes newlines, so the JSON is always one `data:` line.
        match serde_json::to_string(v) {
            Ok(json) => {
                self.pending
                    .push_back(Bytes::from(format!("id: {}\ndata: {json}\n\n", v.id)));
                self.last_id = self.last_id.max(v.id);
                self.sent.push_back(v.id);
                if self.sent.len() > REMEMBERED {
                    self.sent.pop_front();
                }
            }
            Err(e) => tracing::error!(error = %e, "notification not serialisable"),
        }
    }

    /// Re-reads from the database what may have been missed (signals lost or lagging).
    async fn resync(&mut self) {
        let rows = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            nq::since(&mut conn, self.sub.user_id, self.last_id, REPLAY_MAX)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        match rows {
            Ok(rows) => {
                for n in rows {
                    self.push(&n.into());
                }
            }
            Err(e) => tracing::warn!(error = %e, "stream resync failed"),
        }
    }

    /// Ends the stream on purpose: the last block sets the client's `Last-Event-ID` and its
    /// reconnect delay; no event is dispatched.
    fn finish(&mut self, retry_ms: u64, why: &str) {
        self.pending.push_back(Bytes::from(format!(
            "retry: {retry_ms}\nid: {}\n: {why}\n\n",
            self.last_id
        )));
        self.done = true;
    }

    /// The next chunk to send, or `None` when the stream ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.pending.pop_front() {
                return Some(chunk);
            }
            if self.done {
                return None;
            }
            let draining = self.draining.clone();
            tokio::select! {
                // Ending comes first: a busy stream must not hold a draining instance up.
                biased;
                () = draining.wait() => {
                    let (lo, hi) = RETRY_AFTER_DRAIN_MS;
                    let spread = (uuid::Uuid::new_v4().as_u128() % u128::from(hi - lo)) as u64;
                    self.finish(lo + spread, "reconnect");
                }
                _ = &mut self.sub.evicted => self.finish(RETRY_AFTER_EVICTION_MS, "replaced"),
                msg = self.sub.rx.recv() => match msg {
                    Ok(Push::One(v)) => self.push(&v),
                    Ok(Push::Resync) | Err(RecvError::Lagged(_)) => self.resync().await,
                    Err(RecvError::Closed) => self.done = true,
                },
                _ = self.ticker.tick() => {
                    if !self.revoked() {
                        self.pending.push_back(Bytes::from_static(b": ping\n\n"));
                    }
                }
            }
        }
    }
}

/// 503 with `Retry-After`: this instance has `SSE_MAX_STREAMS` streams open.
fn instance_full() -> HttpResponse {
    let mut res = ApiError::unavailable(
        "Too many live notification streams on this server; try again shortly",
    )
    .with_code("too_many_streams")
    .error_response();
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

fn last_event_id(req: &HttpRequest, query: &StreamQuery) -> Option<i64> {
    req.headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(query.last_event_id)
        .filter(|id| *id >= 0)
}

pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StreamQuery>,
) -> HttpResult {
    let st = state.get_ref();
    let query = query.into_inner();
    let token = bearer_token(&req)
        .map(str::to_owned)
        .or_else(|| query.token.clone().filter(|t| !t.trim().is_empty()))
        .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
    let user = st.platform.auth.authenticate(token.trim()).await?;
    // Subscribed before reading the database: nothing committed from here on can be missed.
    let limits = StreamLimits {
        per_user: st.config.max_streams_per_user,
        total: st.config.max_streams,
    };
    let sub = match st.hub.subscribe(user.id, limits) {
        Ok(sub) => sub,
        Err(Refused::InstanceFull) => return Ok(instance_full()),
    };
    let after = last_event_id(&req, &query);
    let (last_id, replay) = {
        let mut conn = st.platform.pool.get().await?;
        match after {
            Some(after) => (
                after,
                nq::since(&mut conn, user.id, after, REPLAY_MAX).await?,
            ),
            None => (nq::latest_id(&mut conn, user.id).await?, Vec::new()),
        }
    };
    let keepalive = st.config.sse_keepalive;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut live = Live {
        sub,
        // Headers go out at once with a first comment; `retry` sets the reconnect delay.
        pending: VecDeque::from([Bytes::from_static(b"retry: 3000\n: connected\n\n")]),
        ticker,
        last_id,
        sent: VecDeque::new(),
        pool: st.platform.pool.clone(),
        claims: user.claims,
        revocations: st.platform.auth.revocations.clone(),
        draining: st.platform.draining.clone(),
        done: false,
    };
    for n in replay {
        live.push(&n.into());
    }
    let body = futures_util::stream::unfold(live, |mut live| async move {
        let chunk = live.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), live))
    });
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-cache, no-transform"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
