//! Demo automations for the local platform (idempotent: matched by name).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use zimmer_config::Settings;
use zimmer_db::schema::automations;

struct Demo {
    name: &'static str,
    description: &'static str,
    pricing_type: &'static str,
    price_per_token: i64,
}

const DEMOS: &[Demo] = &[
    Demo {
        name: "ربات پشتیبانی تلگرام",
        description: "پاسخ‌گویی خودکار به پرسش‌های مشتریان در تلگرام با هوش مصنوعی",
        pricing_type: "token_per_session",
        price_per_token: 15_000,
    },
    Demo {
        name: "دستیار فروش",
        description: "معرفی محصولات و ثبت سفارش در گفت‌وگو",
        pricing_type: "token_per_step",
        price_per_token: 8_000,
    },
    Demo {
        name: "Content Writer",
        description: "Drafts posts and captions for your channel",
        pricing_type: "token_per_session",
        price_per_token: 12_000,
    },
];

pub async fn demo_automations(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(settings.database.url.expose()).await?;
    for demo in DEMOS {
        let exists: bool = diesel::select(diesel::dsl::exists(
            automations::table.filter(automations::name.eq(demo.name)),
        ))
        .get_result(&mut conn)
        .await?;
        if exists {
            continue;
        }
        diesel::insert_into(automations::table)
            .values((
                automations::name.eq(demo.name),
                automations::description.eq(demo.description),
                automations::pricing_type.eq(demo.pricing_type),
                automations::price_per_token.eq(demo.price_per_token),
            ))
            .execute(&mut conn)
            .await?;
        println!("created demo automation {}", demo.name);
    }
    Ok(())
}
