use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    SupportStaff,
    TechnicalTeam,
    Manager,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Customer,
        Role::SupportStaff,
        Role::TechnicalTeam,
        Role::Manager,
    ];
    pub const STAFF: [Role; 3] = [Role::SupportStaff, Role::TechnicalTeam, Role::Manager];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::SupportStaff => "support_staff",
            Role::TechnicalTeam => "technical_team",
            Role::Manager => "manager",
        }
    }

    pub fn is_staff(self) -> bool {
        self != Role::Customer
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(())
    }
}

/// Access-token claims (docs/architecture.md "Identity across services").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string per RFC 7519.
    pub sub: String,
    pub role: Role,
    /// The session (refresh-token family) this token belongs to.
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// When the person signed in to this session (unix seconds), kept across refreshes:
    /// auth asks for a recent sign-in before security changes such as two-factor setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl Claims {
    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}
