//! KB monitoring on the admin dashboard (docs/panels.md "Knowledge base, KB templates, KB
//! monitoring" and "KB monitoring: status, reset, history"): the marketplace asks the vendors
//! and keeps the history; admin relays, remembers which rows each staff member was shown, and
//! audits resets.
//!
//! The dashboard's reset button sends the row's position in the status table (plus one), not
//! an id. Taking that number for an id reset the wrong customer in the original, so here it is
//! looked up in the ordered user automation ids of the status listing *this* staff member
//! last loaded (kept in Redis for 15 minutes); without one, or outside it, the answer is 409
//! asking to reload.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use reqwest::Method;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::json;
use zimmer_events::contracts::internal::kb_monitoring::{
    KbChart, KbHistoryItem, KbHistoryStats, KbResetAnswer, KbStatusReport,
};
use zimmer_http::{ApiError, HttpResult};

use super::{path_digits, path_id};
use crate::{
    AppState,
    clients::Service,
    ops::{Audit, OwnerCall, call_owner, read_owner, typed},
    rbac::Staff,
};

/// How long a staff member's status listing stays usable for a reset by position.
const LISTING_TTL: Duration = Duration::from_secs(15 * 60);

/// The marketplace takes up to 25 s for a status request (its vendors' time limit); a little
/// more here so its answer, not our timeout, decides.
const STATUS_TIMEOUT: Duration = Duration::from_secs(35);

fn listing_key(staff_id: i64) -> String {
    format!("admin:kb:listing:v1:{staff_id}")
}

/// The rows of the last status table a staff member loaded, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Listing {
    automation_id: i64,
    user_automation_ids: Vec<i64>,
}

/// The user automation at 1-based `position` of the listing, if there is one.
fn at_position(listing: &Listing, position: u64) -> Option<i64> {
    let index = usize::try_from(position.checked_sub(1)?).ok()?;
    listing.user_automation_ids.get(index).copied()
}

/// The query of the KB calls, relayed as given (blank values dropped): the marketplace
/// validates it and answers 400 with what is wrong.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KbQuery {
    automation_id: Option<String>,
    user_id: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    page: Option<String>,
    limit: Option<String>,
    days: Option<String>,
}

/// The marketplace's answer to a history read at `path` with the `keys` of `query`, as its
/// contract type `T` (another shape is a 500, not relayed).
async fn relay<T: DeserializeOwned + Serialize>(
    state: &AppState,
    path: &str,
    query: &KbQuery,
    keys: &[&'static str],
) -> HttpResult {
    let answer: T = read_owner(state, Service::Marketplace, path, &query.pairs(keys)).await?;
    Ok(HttpResponse::Ok().json(answer))
}

impl KbQuery {
    fn pairs(&self, keys: &[&'static str]) -> Vec<(&'static str, String)> {
        let all: [(&'static str, &Option<String>); 7] = [
            ("automation_id", &self.automation_id),
            ("user_id", &self.user_id),
            ("from_date", &self.from_date),
            ("to_date", &self.to_date),
            ("page", &self.page),
            ("limit", &self.limit),
            ("days", &self.days),
        ];
        all.into_iter()
            .filter(|(k, _)| keys.contains(k))
            .filter_map(|(k, v)| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| (k, v.to_owned()))
            })
            .collect()
    }
}

/// `GET /api/admin/kb-status?automation_id=`
pub async fn status(
    staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let reply = state
        .upstreams
        .get_slow(
            Service::Marketplace,
            "/internal/kb/status",
            &query.pairs(&["automation_id"]),
            STATUS_TIMEOUT,
        )
        .await?;
    let report: KbStatusReport = typed(Service::Marketplace, reply)?;
    let listing = Listing {
        automation_id: report.automation_id,
        user_automation_ids: report
            .kb_statuses
            .iter()
            .map(|r| r.user_automation_id)
            .collect(),
    };
    state
        .platform
        .redis
        .set_json(&listing_key(staff.id()), &listing, LISTING_TTL)
        .await;
    Ok(HttpResponse::Ok().json(report))
}

/// Resets through the marketplace and audits it with the real user automation id.
async fn reset(
    state: &AppState,
    staff: &Staff,
    user_automation_id: i64,
    position: Option<u64>,
) -> HttpResult {
    let path = format!("/internal/kb/reset/{user_automation_id}");
    let reply = call_owner(
        state,
        staff,
        OwnerCall::new(Service::Marketplace, Method::POST, &path),
        |reply| {
            Audit::new(
                "kb.reset",
                "user_automation",
                Some(user_automation_id),
                json!({
                    "automation_id": reply.body.get("automation_id"),
                    "automation_name": reply.body.get("automation_name"),
                    "reset_status": reply.body.get("reset_status"),
                    "position": position,
                }),
            )
        },
    )
    .await?;
    let answer: KbResetAnswer = typed(Service::Marketplace, reply)?;
    Ok(HttpResponse::Ok().json(json!({
        "message": answer.message,
        "user_automation_id": answer.user_automation_id,
        "automation_name": answer.automation_name,
        "reset_status": answer.reset_status,
    })))
}

/// `POST /api/admin/kb-reset/{id}`: `{id}` is the 1-based row of this staff member's last
/// status listing (see the module docs).
pub async fn reset_by_position(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResult {
    let position = path_digits(&path)?;
    let listing: Option<Listing> = state
        .platform
        .redis
        .get_json(&listing_key(staff.id()))
        .await;
    let Some(listing) = listing else {
        return Err(ApiError::conflict(
            "kb_listing_missing",
            "No KB status list of yours from the last 15 minutes: reload the KB monitoring \
             page and try again",
        ));
    };
    let Some(user_automation_id) = at_position(&listing, position) else {
        return Err(ApiError::conflict(
            "kb_listing_stale",
            format!(
                "Row {position} is not in the KB status list you last loaded: reload the KB \
                 monitoring page and try again"
            ),
        ));
    };
    reset(&state, &staff, user_automation_id, Some(position)).await
}

/// `POST /api/admin/user-automations/{id}/kb-reset`
pub async fn reset_user_automation(
    staff: Staff,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResult {
    let id = path_id(&path)?;
    reset(&state, &staff, id, None).await
}

/// `GET /api/admin/kb-history`: a bare array, newest first.
pub async fn history(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let keys = [
        "automation_id",
        "user_id",
        "from_date",
        "to_date",
        "page",
        "limit",
    ];
    relay::<Vec<KbHistoryItem>>(&state, "/internal/kb/history", &query, &keys).await
}

/// `GET /api/admin/kb-history/stats`
pub async fn stats(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let keys = ["automation_id", "user_id", "from_date", "to_date"];
    relay::<KbHistoryStats>(&state, "/internal/kb/history/stats", &query, &keys).await
}

/// `GET /api/admin/kb-history/chart-data`
pub async fn chart(
    _staff: Staff,
    state: web::Data<AppState>,
    query: web::Query<KbQuery>,
) -> HttpResult {
    let keys = ["automation_id", "user_id", "days"];
    relay::<KbChart>(&state, "/internal/kb/history/chart-data", &query, &keys).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_bounded() {
        let l = Listing {
            automation_id: 1,
            user_automation_ids: vec![30, 10, 20],
        };
        assert_eq!(at_position(&l, 1), Some(30));
        assert_eq!(at_position(&l, 3), Some(20));
        assert_eq!(at_position(&l, 0), None);
        assert_eq!(at_position(&l, 4), None);
        assert_eq!(at_position(&l, u64::MAX), None);
    }

    #[test]
    fn path_ids_are_digits_only() {
        assert_eq!(path_digits("12").ok(), Some(12));
        for bad in ["", "-1", "+1", "1a", "１", "99999999999999999999999"] {
            assert_eq!(
                path_digits(bad).err().map(|e| e.status().as_u16()),
                Some(404),
                "{bad}"
            );
        }
    }

    #[test]
    fn blank_query_values_are_not_relayed() {
        let q = KbQuery {
            automation_id: Some("3".into()),
            user_id: Some(" ".into()),
            days: Some("7".into()),
            ..KbQuery::default()
        };
        assert_eq!(
            q.pairs(&["automation_id", "user_id"]),
            vec![("automation_id", "3".to_owned())]
        );
    }
}
