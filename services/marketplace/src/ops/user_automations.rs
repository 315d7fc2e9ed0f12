//! A customer adds an automation: the user automation, its demo tokens granted through the
//! ledger (`demo:<user automation id>`) and `user_automation.created`, in one transaction.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use zimmer_db::models::marketplace::UserAutomation;
use zimmer_events::contracts::UserAutomationCreated;
use zimmer_http::ApiError;

use crate::{
    PRODUCER,
    ops::ledger::{self, Change},
    queries::{
        catalogue::{self, CatalogueItem},
        user_automations,
    },
};

/// Adds listed, active automation `automation_id` for `user_id`; the new row (after the demo
/// grant) and its catalogue item.
pub async fn add(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    automation_id: i64,
    threshold: i64,
) -> Result<(UserAutomation, CatalogueItem), ApiError> {
    conn.transaction(async |conn| {
        let automation = catalogue::listed_by_id(conn, automation_id)
            .await?
            .filter(|a| a.status == "active")
            .ok_or_else(|| ApiError::not_found("Automation not found"))?;
        let ua = user_automations::insert(conn, user_id, automation_id)
            .await?
            .ok_or_else(|| {
                ApiError::conflict("already_added", "You have already added this automation")
            })?;
        let source_key = format!("demo:{}", ua.id);
        let meta = json!({ "automation_id": automation_id });
        let applied = ledger::apply(
            conn,
            &ua,
            &Change {
                kind: "demo_grant",
                delta: 0,
                demo_delta: automation.demo_tokens,
                source_key: &source_key,
                usage_type: None,
                meta: &meta,
                actor_id: None,
                reason: None,
            },
            threshold,
        )
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("demo grant {source_key} exists")))?;
        zimmer_events::enqueue_event(
            conn,
            PRODUCER,
            &UserAutomationCreated {
                user_automation_id: ua.id,
                user_id,
                automation_id,
                demo_tokens: automation.demo_tokens,
            },
        )
        .await?;
        Ok::<_, ApiError>((applied.user_automation, automation))
    })
    .await
}
