//! Demo data for the local platform: a manager account.
//!
//! In development the manager gets the published demo password unless
//! `DEMO_MANAGER_PASSWORD` says otherwise. In production a published password would be a
//! back door, so the command refuses unless `DEMO_MANAGER_PASSWORD` is set (and is not the
//! published one); the password is never printed or logged.

use diesel_async::AsyncConnection;
use zimmer_config::Settings;
use zimmer_db::{AsyncPgConnection, models::NewUser};
use zimmer_jwt::Role;

use crate::{
    domain::{address, password::check_new_password},
    queries,
    workers::hashing::PasswordHasher,
};

/// The development password of the demo manager (the local start script prints it).
pub const PUBLISHED_DEMO_PASSWORD: &str = "Zimmer-demo-2026!";

/// The demo manager's password for these settings, or why seeding must not go on.
fn demo_password(settings: &Settings) -> anyhow::Result<String> {
    let given = settings
        .env
        .get("DEMO_MANAGER_PASSWORD")
        .filter(|p| !p.is_empty());
    if !settings.is_production() {
        return Ok(given.unwrap_or_else(|| PUBLISHED_DEMO_PASSWORD.to_owned()));
    }
    let Some(password) = given else {
        anyhow::bail!(
            "refusing to seed the demo manager in production without a password: set \
             DEMO_MANAGER_PASSWORD (it is never printed)"
        );
    };
    if password == PUBLISHED_DEMO_PASSWORD {
        anyhow::bail!(
            "refusing to seed the demo manager in production with the published demo password: \
             choose another DEMO_MANAGER_PASSWORD"
        );
    }
    check_new_password(&password).map_err(|why| anyhow::anyhow!("DEMO_MANAGER_PASSWORD {why}"))?;
    Ok(password)
}

/// Creates the demo manager unless the email exists (idempotent).
pub async fn demo_manager(settings: &Settings) -> anyhow::Result<()> {
    let email = settings
        .env
        .string("DEMO_MANAGER_EMAIL", "manager@zimmer.local");
    let email =
        address::normalize(&email).map_err(|e| anyhow::anyhow!("DEMO_MANAGER_EMAIL {e}"))?;
    let password = demo_password(settings)?;
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
