//! Demo automations for the local platform (idempotent: matched by name). Each is wired to
//! the fake vendor: provision and health URLs under `FAKE_VENDOR_URL` (default
//! `http://127.0.0.1:8090`) and a service token derived from `DEMO_SERVICE_TOKEN` (default
//! [`DEV_DEMO_SERVICE_TOKEN`]) and the demo's slug, which the fake vendor derives the same
//! way. (Service tokens are unique per automation, so one shared token cannot do.)

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use zimmer_config::{Env, Settings};
use zimmer_db::schema::automations;
use zimmer_events::contracts::internal::automations::service_token_tail;

use crate::domain::tokens::token_hash;

/// For local development only; `seed-demo` refuses it in production.
pub const DEV_DEMO_SERVICE_TOKEN: &str = "zimmer-dev-demo-vendor-token";
pub const DEFAULT_FAKE_VENDOR_URL: &str = "http://127.0.0.1:8090";

pub struct Demo {
    pub slug: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub pricing_type: &'static str,
    pub price_per_token: i64,
}

pub const DEMOS: &[Demo] = &[
    Demo {
        slug: "support-bot",
        name: "ربات پشتیبانی تلگرام",
        description: "پاسخ‌گویی خودکار به پرسش‌های مشتریان در تلگرام با هوش مصنوعی",
        pricing_type: "token_per_session",
        price_per_token: 15_000,
    },
    Demo {
        slug: "sales-assistant",
        name: "دستیار فروش",
        description: "معرفی محصولات و ثبت سفارش در گفت‌وگو",
        pricing_type: "token_per_step",
        price_per_token: 8_000,
    },
    Demo {
        slug: "content-writer",
        name: "Content Writer",
        description: "Drafts posts and captions for your channel",
        pricing_type: "token_per_session",
        price_per_token: 12_000,
    },
];

/// The service token of one demo automation.
pub fn demo_service_token(base: &str, slug: &str) -> String {
    format!("{base}.{slug}")
}

pub fn demo_token_base(env: &Env) -> String {
    env.string("DEMO_SERVICE_TOKEN", DEV_DEMO_SERVICE_TOKEN)
}

pub fn fake_vendor_url(env: &Env) -> String {
    env.string("FAKE_VENDOR_URL", DEFAULT_FAKE_VENDOR_URL)
        .trim_end_matches('/')
        .to_owned()
}

pub async fn demo_automations(settings: &Settings) -> anyhow::Result<()> {
    let base = demo_token_base(&settings.env);
    if settings.is_production() && base == DEV_DEMO_SERVICE_TOKEN {
        anyhow::bail!("set DEMO_SERVICE_TOKEN to seed demo automations in production");
    }
    let vendor = fake_vendor_url(&settings.env);
    let provision_url = format!("{vendor}/provision");
    let health_url = format!("{vendor}/health");
    // The admin dashboard's KB monitoring page asks these (docs/panels.md "KB monitoring").
    let kb_status_url = format!("{vendor}/kb/status");
    let kb_reset_url = format!("{vendor}/kb/reset");
    let mut conn = AsyncPgConnection::establish(settings.database.url.expose()).await?;
    for demo in DEMOS {
        let token = demo_service_token(&base, demo.slug);
        let hash = token_hash(&token);
        let tail = service_token_tail(&token);
        let existing: Option<i64> = automations::table
            .filter(automations::name.eq(demo.name))
            .select(automations::id)
            .first(&mut conn)
            .await
            .optional()?;
        // What ties the demo to the vendor: written on creation and followed on every run.
        let vendor_columns = (
            automations::provision_url.eq(&provision_url),
            automations::health_check_url.eq(&health_url),
            automations::api_kb_status_url.eq(&kb_status_url),
            automations::api_kb_reset_url.eq(&kb_reset_url),
            automations::service_token_hash.eq(&hash),
            automations::service_token_tail.eq(&tail),
        );
        match existing {
            Some(id) => {
                // Follow the current vendor address and token (restarts with other settings).
                diesel::update(automations::table.find(id))
                    .set(vendor_columns)
                    .execute(&mut conn)
                    .await?;
            }
            None => {
                diesel::insert_into(automations::table)
                    .values((
                        automations::name.eq(demo.name),
                        automations::description.eq(demo.description),
                        automations::pricing_type.eq(demo.pricing_type),
                        automations::price_per_token.eq(demo.price_per_token),
                        vendor_columns,
                    ))
                    .execute(&mut conn)
                    .await?;
                println!("created demo automation {}", demo.name);
            }
        }
    }
    println!("demo automations use the vendor at {vendor}");
    Ok(())
}
