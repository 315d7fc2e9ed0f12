#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::{QueryableByName, sql_types::BigInt};
use diesel_async::RunQueryDsl;
use futures_util::future::OptionFuture;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use zimmer_jwt::Role;
use zimmer_testkit::{TempDir, TestApp, TestContext};

pub const WAIT: Duration = Duration::from_secs(20);

/// Which services run next to admin (in-process, on their own ports).
#[derive(Debug, Clone, Copy, Default)]
pub struct With {
    pub auth: bool,
    pub marketplace: bool,
    pub billing: bool,
    pub support: bool,
}

impl With {
    pub const NONE: With = With {
        auth: false,
        marketplace: false,
        billing: false,
        support: false,
    };
    pub const ALL: With = With {
        auth: true,
        marketplace: true,
        billing: true,
        support: true,
    };
    pub const AUTH: With = With {
        auth: true,
        ..With::NONE
    };
    pub const MARKETPLACE: With = With {
        marketplace: true,
        ..With::NONE
    };
    pub const BILLING: With = With {
        billing: true,
        ..With::NONE
    };
    pub const SUPPORT: With = With {
        support: true,
        ..With::NONE
    };

    /// The services of both.
    pub const fn and(self, other: With) -> With {
        With {
            auth: self.auth || other.auth,
            marketplace: self.marketplace || other.marketplace,
            billing: self.billing || other.billing,
            support: self.support || other.support,
        }
    }
}

pub struct World {
    pub ctx: TestContext,
    pub admin: TestApp,
    pub auth: Option<TestApp>,
    pub market: Option<TestApp>,
    pub billing: Option<TestApp>,
    pub support: Option<TestApp>,
    _files: Option<TempDir>,
}

/// Nothing listens on port 9 (discard): a service not started is "unreachable".
const NOWHERE: &str = "http://127.0.0.1:9";

impl World {
    pub async fn start(with: With) -> Self {
        Self::start_with(with, &[]).await
    }

    pub async fn start_with(with: With, admin_overrides: &[(&str, &str)]) -> Self {
        let ctx = TestContext::new().await;
        let auth = OptionFuture::from(
            with.auth
                .then(|| ctx.spawn(ctx.settings("auth", &[]), zimmer_auth::build)),
        )
        .await;
        let url =
            |a: &Option<TestApp>| a.as_ref().map_or(NOWHERE.to_owned(), |a| a.address.clone());
        let auth_url = url(&auth);
        // The services beside admin check tokens with this auth.
        let beside = |service: &'static str, setting: (&'static str, &str)| {
            ctx.settings(
                service,
                &[("AUTH_INTERNAL_URL", auth_url.as_str()), setting],
            )
        };
        let market = OptionFuture::from(with.marketplace.then(|| {
            let settings = beside("marketplace", ("HEALTH_CHECK_ENABLED", "false"));
            ctx.spawn(settings, zimmer_marketplace::build)
        }))
        .await;
        let billing = OptionFuture::from(with.billing.then(|| {
            let settings = beside("billing", ("RECONCILE_ENABLED", "false"));
            ctx.spawn(settings, zimmer_billing::build)
        }))
        .await;
        let files = with
            .support
            .then(|| TempDir::new("admin-support-attachments"));
        let support = OptionFuture::from(files.as_ref().map(|files| {
            let dir = files.path.to_string_lossy().into_owned();
            ctx.spawn(
                beside("support", ("ATTACHMENTS_DIR", dir.as_str())),
                zimmer_support::build,
            )
        }))
        .await;
        let (m, b, s) = (url(&market), url(&billing), url(&support));
        let mut overrides: Vec<(&str, &str)> = vec![
            ("AUTH_INTERNAL_URL", auth_url.as_str()),
            ("MARKETPLACE_INTERNAL_URL", m.as_str()),
            ("BILLING_INTERNAL_URL", b.as_str()),
            ("SUPPORT_INTERNAL_URL", s.as_str()),
        ];
        overrides.extend_from_slice(admin_overrides);
        let admin = ctx
            .spawn(ctx.settings("admin", &overrides), zimmer_admin::build)
            .await;
        Self {
            ctx,
            admin,
            auth,
            market,
            billing,
            support,
            _files: files,
        }
    }

    /// As [`World::start_with`], with backups on in `dir` and no schedule (a trigger really
    /// runs; nothing runs on its own), `extra` on top.
    pub async fn with_backups(with: With, dir: &TempDir, extra: &[(&str, &str)]) -> Self {
        let d = dir.path.to_string_lossy().into_owned();
        let mut env: Vec<(&str, &str)> =
            vec![("BACKUP_DIR", d.as_str()), ("BACKUP_INTERVAL_HOURS", "0")];
        env.extend_from_slice(extra);
        Self::start_with(with, &env).await
    }

    /// A user row and an access token for them (what auth would issue).
    pub async fn user(&self, email: &str, role: Role) -> (i64, String) {
        self.ctx.user_with_token(email, role).await
    }

    /// One user of each of `roles`, in that order, at the role's usual address
    /// ([`staff_email`]; some tests assert on it), with their tokens.
    pub async fn staff<const N: usize>(&self, roles: [Role; N]) -> [(i64, String); N] {
        let mut users = Vec::with_capacity(N);
        for role in roles {
            users.push(self.user(staff_email(role), role).await);
        }
        users.try_into().expect("one user per role")
    }

    /// `UPDATE users SET {set}` of the user `id` (ageing, deactivating, deleting a row).
    pub async fn update_user(&self, id: i64, set: &str) {
        self.sql(&format!("UPDATE users SET {set} WHERE id = {id}"))
            .await;
    }

    /// A succeeded, verified payment of `amount` for `tokens` tokens of the user
    /// automation `ua` (of `automation`, owned by `user_id`); its id.
    pub async fn paid(
        &self,
        user_id: i64,
        automation: i64,
        ua: i64,
        amount: i64,
        tokens: i64,
    ) -> i64 {
        self.insert(&format!(
            "INSERT INTO payments (user_id, automation_id, user_automation_id, amount, \
             tokens_purchased, status, verified_at) VALUES ({user_id}, {automation}, {ua}, \
             {amount}, {tokens}, 'succeeded', now()) RETURNING id"
        ))
        .await
    }

    pub async fn sql(&self, sql: &str) {
        let mut conn = self.ctx.db.connect().await;
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    /// `INSERT … RETURNING id`.
    pub async fn insert(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        let mut conn = self.ctx.db.connect().await;
        diesel::sql_query(sql)
            .get_result::<Id>(&mut conn)
            .await
            .unwrap()
            .id
    }

    pub async fn count(&self, sql: &str) -> i64 {
        zimmer_testkit::db_count(&self.ctx, sql).await
    }

    /// The `… AS n` of `sql` must be `expected`.
    pub async fn assert_count(&self, sql: &str, expected: i64) {
        assert_eq!(self.count(sql).await, expected, "{sql}");
    }

    /// An automation, a customer's user automation of it (with `tokens` paid tokens), and
    /// returns `(automation_id, user_automation_id)`.
    pub async fn automation_for(&self, user_id: i64, name: &str, tokens: i64) -> (i64, i64) {
        let automation = self
            .insert(&format!(
                "INSERT INTO automations (name, description, price_per_token) \
                 VALUES ('{name}', 'test automation', 1000) RETURNING id"
            ))
            .await;
        let ua = self
            .insert(&format!(
                "INSERT INTO user_automations (user_id, automation_id, tokens_remaining) \
                 VALUES ({user_id}, {automation}, {tokens}) RETURNING id"
            ))
            .await;
        (automation, ua)
    }

    /// The automation "KB Bot", its knowledge-base status and reset calls served by `kb`.
    pub async fn kb_automation(&self, kb: &zimmer_fake_vendor::FakeVendor) -> i64 {
        self.insert(&format!(
            "INSERT INTO automations (name, description, price_per_token, api_kb_status_url, \
             api_kb_reset_url) VALUES ('KB Bot', 'kb', 1000, '{}', '{}') RETURNING id",
            kb.kb_status_url(),
            kb.kb_reset_url()
        ))
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.admin.get(path).bearer_auth(token).call().await
    }

    pub async fn json(&self, path: &str, token: &str) -> Value {
        let res = self.get(path, token).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    /// [`World::json`] whose `total` must be `expected`; the body, for further checks.
    pub async fn json_total(&self, path: &str, token: &str, expected: i64) -> Value {
        let v = self.json(path, token).await;
        assert_eq!(v["total"], expected, "{path}");
        v
    }

    /// Each list's `total` as `token` reads it: `(path, expected)`.
    pub async fn assert_totals(&self, token: &str, cases: &[(&str, i64)]) {
        for (path, total) in cases {
            self.json_total(path, token, *total).await;
        }
    }

    /// Each GET's status as `token` calls it: `(path, expected)`.
    pub async fn assert_statuses(&self, token: &str, cases: &[(&str, StatusCode)]) {
        for (path, status) in cases {
            assert_eq!(self.get(path, token).await.status(), *status, "GET {path}");
        }
    }

    /// A bodiless call as the dashboard makes it: `Content-Type: application/json`, no body.
    pub async fn bare(&self, method: reqwest::Method, path: &str, token: &str) -> Response {
        self.admin
            .client
            .request(method, self.admin.url(path))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .call()
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.admin.delete(path).bearer_auth(token).call().await
    }

    /// [`World::send`] that must answer `expected`; the body as JSON (`Null` when none).
    pub async fn send_expecting(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
        expected: StatusCode,
    ) -> Value {
        let (status, v) =
            zimmer_testkit::json_of(self.send(method.clone(), path, token, body).await).await;
        assert_eq!(status, expected, "{method} {path}: {v}");
        v
    }

    /// A POST of `body` that must answer `expected`; the body as JSON (`Null` when none).
    pub async fn post(&self, path: &str, token: &str, body: &Value, expected: StatusCode) -> Value {
        self.send_expecting(reqwest::Method::POST, path, token, body, expected)
            .await
    }

    /// A PUT of `body` that must answer `expected`; the body as JSON (`Null` when none).
    pub async fn put(&self, path: &str, token: &str, body: &Value, expected: StatusCode) -> Value {
        self.send_expecting(reqwest::Method::PUT, path, token, body, expected)
            .await
    }

    /// A bodiless DELETE that must answer `expected`; the body as JSON (`Null` when none).
    pub async fn delete_expecting(&self, path: &str, token: &str, expected: StatusCode) -> Value {
        let (status, v) = zimmer_testkit::json_of(self.delete(path, token).await).await;
        assert_eq!(status, expected, "DELETE {path}: {v}");
        v
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Response {
        self.admin
            .client
            .request(method, self.admin.url(path))
            .bearer_auth(token)
            .json(body)
            .call()
            .await
    }
}

/// The address of the user [`World::staff`] makes for `role`.
pub fn staff_email(role: Role) -> &'static str {
    match role {
        Role::Manager => "boss@example.com",
        Role::TechnicalTeam => "tech@example.com",
        Role::SupportStaff => "agent@example.com",
        Role::Customer => panic!("customers are made with World::user, at an address of their own"),
    }
}

/// A fake vendor for the knowledge-base pages (status and reset calls); it calls no
/// marketplace back.
pub async fn kb_vendor() -> zimmer_fake_vendor::FakeVendor {
    zimmer_fake_vendor::FakeVendor::start(zimmer_fake_vendor::FakeVendorConfig {
        host: "127.0.0.1".to_owned(),
        port: 0,
        service_tokens: vec![],
        marketplace_url: "http://127.0.0.1:9".to_owned(),
    })
    .await
    .unwrap()
}

/// The body of a response, for assertion messages.
#[allow(unused_imports)] // not every test binary uses it
pub use zimmer_testkit::{Call, json_of as body};
