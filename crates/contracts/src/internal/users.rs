//! Internal API types: users (see internal/mod.rs). Auth owns the users table; admin creates,
//! changes and permanently deletes accounts through `/internal/users...` (docs/panels.md
//! "Users", "Users: the managers list and permanent delete").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /internal/users`: any role (manager only; docs/rbac.md "create any account from the
/// dashboard").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CreateUser {
    pub name: String,
    pub email: String,
    pub role: String,
    /// Without one (staff only), the new member is mailed a link to choose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `false` creates the account deactivated; absent: active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    /// The email counts as verified (a staff member typed it). Absent: not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// `PUT /internal/users/{id}`: each field optional; a value equal to the stored one is no
/// change. Unknown fields (an old client's `actor_id`) are ignored: the actor comes from the
/// acting token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A user as auth's internal API answers it (`GET`, `PUT`, `POST /internal/users...`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct InternalUser {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone_number: Option<String>,
    pub role: String,
    /// True for the three staff roles.
    pub is_admin: bool,
    pub is_active: bool,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub twofa_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Set once the account was deleted (anonymised).
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// `DELETE /internal/users/{id}`: the account was anonymised (its id stays for payments,
/// ledger and tickets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DeletedUser {
    pub user_id: i64,
    pub deleted_at: DateTime<Utc>,
}
