//! Demo data for the local platform: a manager account.

use diesel_async::AsyncConnection;
use zimmer_config::Settings;
use zimmer_db::{AsyncPgConnection, models::NewUser};
use zimmer_jwt::Role;

use crate::{domain::password::PasswordHasher, queries};

/// Creates the demo manager unless the email exists (idempotent).
pub async fn demo_manager(settings: &Settings) -> anyhow::Result<()> {
    let email = settings
        .env
        .string("DEMO_MANAGER_EMAIL", "manager@zimmer.local");
    let password = settings
        .env
        .string("DEMO_MANAGER_PASSWORD", "Zimmer-demo-2026!");
    let email = zimmer_http::validate::email(&email)
        .map_err(|e| anyhow::anyhow!("DEMO_MANAGER_EMAIL {e}"))?;
    let mut conn = AsyncPgConnection::establish(settings.database.url.expose()).await?;
    if queries::user_by_email(&mut conn, &email).await?.is_some() {
        println!("demo manager {email} already exists");
        return Ok(());
    }
    let hash = PasswordHasher::new()
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    queries::insert_user(
        &mut conn,
        &NewUser {
            name: "Demo Manager",
            email: &email,
            phone_number: None,
            password_hash: &hash,
            role: Role::Manager.as_str(),
        },
    )
    .await?;
    println!("created demo manager {email}");
    Ok(())
}
