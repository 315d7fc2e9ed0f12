//! Bot tokens stored in plaintext before sealing existed: each is sealed (with its hash) and
//! the plaintext cleared, once, shortly after start. Idempotent and safe with several
//! replicas (each update applies only if the row still holds the plaintext it read). Until a
//! row is done, readers use its plaintext (`BotTokenVault::reveal`), so nothing waits on it.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use zimmer_db::DbPool;

use crate::{domain::bot_token::BotTokenVault, queries::user_automations};

const BATCH: i64 = 200;
/// Pause before trying again when the database is not reachable.
const RETRY: Duration = Duration::from_secs(5);

pub async fn reseal_legacy_bot_tokens(pool: DbPool, vault: BotTokenVault) {
    loop {
        match reseal_all(&pool, &vault).await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(resealed = n, "legacy plaintext bot tokens sealed");
                return;
            }
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "re-sealing bot tokens failed; retrying"
                );
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn reseal_all(pool: &DbPool, vault: &BotTokenVault) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let (mut after, mut done) = (0i64, 0usize);
    loop {
        let rows = user_automations::legacy_bot_tokens(&mut conn, after, BATCH).await?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(done);
        };
        after = last;
        for (id, plaintext) in rows {
            let sealed = vault.seal(id, &plaintext)?;
            match user_automations::reseal_legacy(&mut conn, id, &plaintext, &sealed).await {
                Ok(n) => done += n,
                // The same bot is already connected (sealed) elsewhere: leave this row as it
                // is for staff to sort out; it keeps working meanwhile.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    tracing::error!(
                        user_automation_id = id,
                        "legacy bot token is connected to another automation too; not re-sealed"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
