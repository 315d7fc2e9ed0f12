#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lapin::{Channel, Connection, options::BasicPublishOptions};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use uuid::Uuid;
use zimmer_config::Settings;
use zimmer_events::{Broker, Envelope, topology};
use zimmer_jwt::Role;
use zimmer_service::Draining;
use zimmer_testkit::{TempDir, TestApp, TestContext, db_count};

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Support {
    pub ctx: TestContext,
    pub app: TestApp,
    pub files: TempDir,
    /// The instance's drain flag (what SIGTERM sets).
    pub draining: Draining,
}

/// Builds support in-process and hands back its drain flag too.
pub async fn spawn_support(ctx: &TestContext, settings: Settings) -> (TestApp, Draining) {
    let slot: Arc<Mutex<Option<Draining>>> = Arc::default();
    let put = slot.clone();
    let app = ctx
        .spawn(settings, |s| async move {
            let app = zimmer_support::build(s).await?;
            *put.lock().unwrap() = Some(app.platform.draining.clone());
            Ok(app)
        })
        .await;
    let draining = slot.lock().unwrap().take().unwrap();
    (app, draining)
}

impl Support {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    pub async fn start_with(overrides: &[(&str, &str)]) -> Self {
        let ctx = TestContext::new().await;
        let files = TempDir::new("support-attachments");
        let dir = files.path.to_string_lossy().into_owned();
        let mut all: Vec<(&str, &str)> = vec![("ATTACHMENTS_DIR", dir.as_str())];
        all.extend_from_slice(overrides);
        let (app, draining) = spawn_support(&ctx, ctx.settings("support", &all)).await;
        Self {
            ctx,
            app,
            files,
            draining,
        }
    }

    /// A user in the database and an access token for them.
    pub async fn user(&self, email: &str, role: Role) -> (i64, String) {
        let id = self.ctx.create_user(email, role).await;
        self.set_name(id, email.split('@').next().unwrap()).await;
        let token = self.ctx.mint_access_token(id, role, Uuid::new_v4());
        (id, token)
    }

    pub async fn set_name(&self, id: i64, name: &str) {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use zimmer_db::schema::users;
        let mut conn = self.ctx.db.connect().await;
        diesel::update(users::table.find(id))
            .set(users::name.eq(name))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    pub async fn count(&self, sql: &str) -> i64 {
        db_count(&self.ctx, sql).await
    }

    /// Files under the attachment directory (recursively).
    pub fn stored_files(&self) -> usize {
        fn walk(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            let p = e.path();
                            if p.is_dir() { walk(&p) } else { 1 }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.files.path)
    }

    pub fn get(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.get(path).bearer_auth(token)
    }
    pub fn post(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.post(path).bearer_auth(token)
    }
    pub fn put(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.put(path).bearer_auth(token)
    }
    pub fn delete(&self, path: &str, token: &str) -> RequestBuilder {
        self.app.delete(path).bearer_auth(token)
    }

    /// Opens this instance's notification stream for `token` ([`Sse::opened`]).
    pub async fn open_stream(&self, token: &str) -> Sse {
        Sse::opened(self.app.get(&stream_path(token)).send().await.unwrap()).await
    }

    /// A subscription of `user_id` to a new automation called `name`: its
    /// `user_automations` id.
    pub async fn user_automation(&self, user_id: i64, name: &str) -> i64 {
        use diesel::sql_types::{BigInt, Text};
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = self.ctx.db.connect().await;
        diesel::sql_query(
            "WITH a AS (INSERT INTO automations (name) VALUES ($1) RETURNING id) \
             INSERT INTO user_automations (user_id, automation_id) SELECT $2, id FROM a \
             RETURNING id",
        )
        .bind::<Text, _>(name)
        .bind::<BigInt, _>(user_id)
        .get_result::<Id>(&mut conn)
        .await
        .unwrap()
        .id
    }

    /// A JSON ticket; answers its id.
    pub async fn ticket(&self, token: &str, subject: &str, message: &str) -> i64 {
        let body = self
            .post("/api/tickets", token)
            .json(&serde_json::json!({ "subject": subject, "message": message }))
            .json_expecting(StatusCode::CREATED)
            .await;
        body["id"].as_i64().unwrap()
    }

    /// A `GET` as `token` that must answer 200; the body.
    pub async fn read(&self, path: &str, token: &str) -> Value {
        let (status, v) = self.get(path, token).json_or_text().await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// A message on ticket `id` as `token`: status and body.
    pub async fn post_message(&self, id: i64, token: &str, text: &str) -> (StatusCode, Value) {
        self.post(&format!("/api/tickets/{id}/messages"), token)
            .json(&serde_json::json!({ "message": text }))
            .json_or_text()
            .await
    }

    /// `PUT /api/tickets/{id}` (the panel's replies and edits) as `token`: status and body.
    pub async fn update_ticket(&self, id: i64, token: &str, body: Value) -> (StatusCode, Value) {
        self.put(&format!("/api/tickets/{id}"), token)
            .json(&body)
            .json_or_text()
            .await
    }

    /// A publisher on this test's exchange, with the support consumer's queue declared first
    /// (so nothing published before the service subscribed is lost).
    pub async fn publisher(&self) -> Publisher {
        let settings = self.ctx.settings("support", &[]);
        let broker = Broker::start(&settings.amqp, "test-publisher");
        let (conn, channel) = broker.open_channel(WAIT, true).await.unwrap();
        let bindings: Vec<String> = zimmer_support::consumer::BINDINGS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        topology::declare_consumer_queues(
            &channel,
            &settings.amqp,
            zimmer_support::consumer::CONSUMER,
            &bindings,
        )
        .await
        .unwrap();
        Publisher {
            exchange: settings.amqp.exchange.clone(),
            _broker: broker,
            _conn: conn,
            channel,
        }
    }

    /// `zimmer_events_consumed_total` of the support consumer for one type and outcome.
    pub async fn consumed(&self, event_type: &str, outcome: &str) -> u64 {
        let text = self.app.get("/metrics").call().await.text().await.unwrap();
        let labels = [("type", event_type), ("outcome", outcome)];
        zimmer_testkit::metric_sum(&text, "zimmer_events_consumed_total", &labels)
    }
}

pub struct Publisher {
    exchange: String,
    _broker: Broker,
    _conn: std::sync::Arc<Connection>,
    channel: Channel,
}

impl Publisher {
    /// Publishes the envelope as a producer's relay would, waiting for the broker's confirm.
    pub async fn publish(&self, envelope: &Envelope) {
        let payload = serde_json::to_vec(envelope).unwrap();
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                envelope.event_type.as_str().into(),
                BasicPublishOptions::default(),
                &payload,
                envelope.amqp_properties(&Default::default()),
            )
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack());
    }
}

pub use zimmer_testkit::{Call, json_or_text as json};

/// A multipart body built by hand, so tests control every byte (file names included).
pub struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    pub fn new() -> Self {
        Self {
            boundary: format!("----zimmer{}", Uuid::new_v4().simple()),
            body: Vec::new(),
        }
    }

    /// The start of a new ticket as the panel sends it: its subject and first message.
    pub fn ticket(subject: &str, message: &str) -> Self {
        Self::new()
            .text("subject", subject)
            .text("message", message)
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self
    }

    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The panel's one attachment: a small PNG ([`png_bytes`]) named `filename`.
    pub fn png(self, filename: &str) -> Self {
        self.file("attachment", filename, "image/png", &png_bytes())
    }

    pub fn send(mut self, req: RequestBuilder) -> RequestBuilder {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        req.header(
            "Content-Type",
            format!("multipart/form-data; boundary={}", self.boundary),
        )
        .body(self.body)
    }
}

/// A small valid PNG header followed by some bytes (the service checks magic numbers only).
pub fn png_bytes() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    b.extend((0..2000u32).map(|i| (i % 251) as u8));
    b
}

/// The notification stream with the token in the query, as `EventSource` connects.
pub fn stream_path(token: &str) -> String {
    format!("/api/notifications/stream?token={token}")
}

/// Reads an SSE response chunk by chunk.
pub struct Sse {
    res: Response,
    buf: String,
    /// The server ended the stream.
    pub closed: bool,
    /// What a browser would send as `Last-Event-ID` on reconnect: the last `id:` field seen,
    /// with or without data in its block.
    pub last_event_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    Comment(String),
    /// A dispatched event: its id and data (the default `message` type).
    Event {
        id: Option<String>,
        data: String,
    },
    /// A block with no data (e.g. only `retry:`): not dispatched by browsers.
    Empty,
}

impl Sse {
    pub fn new(res: Response) -> Self {
        Self {
            res,
            buf: String::new(),
            closed: false,
            last_event_id: None,
        }
    }

    /// A stream that opened: 200, `text/event-stream`, and its opening block (`retry` and a
    /// comment, no event) already read.
    pub async fn opened(res: Response) -> Self {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut sse = Self::new(res);
        let first = sse.next(WAIT).await.expect("the opening block");
        assert!(
            first.iter().all(|i| !matches!(i, SseItem::Event { .. })),
            "{first:?}"
        );
        sse
    }

    /// The next block (up to a blank line), or `None` when the stream ends or `within` passes.
    pub async fn next(&mut self, within: Duration) -> Option<Vec<SseItem>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf[..i].to_owned();
                self.buf.drain(..i + 2);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        self.last_event_id = Some(v.trim().to_owned());
                    }
                }
                return Some(parse_block(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?;
            match chunk.unwrap() {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    /// Reads until the server ends the stream (true) or `within` passes (false).
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.closed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.next(left).await;
        }
        true
    }

    /// The next dispatched event's data as JSON, skipping comments; `None` on timeout/end.
    pub async fn next_event(&mut self, within: Duration) -> Option<(Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            for item in self.next(left).await? {
                if let SseItem::Event { id, data } = item {
                    return Some((id, serde_json::from_str(&data).unwrap()));
                }
            }
        }
    }
}

fn parse_block(block: &str) -> Vec<SseItem> {
    let mut items = Vec::new();
    let mut data: Option<String> = None;
    let mut id = None;
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            items.push(SseItem::Comment(c.trim().to_owned()));
        } else if let Some(d) = line.strip_prefix("data:") {
            let d = d.strip_prefix(' ').unwrap_or(d);
            data = Some(match data {
                Some(prev) => format!("{prev}\n{d}"),
                None => d.to_owned(),
            });
        } else if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_owned());
        } else if line.starts_with("event:") {
            panic!("named events are not expected: {line}");
        }
    }
    match data {
        Some(data) => items.push(SseItem::Event { id, data }),
        None if items.is_empty() => items.push(SseItem::Empty),
        None => {}
    }
    items
}
