//! Discount codes as admin manages them (docs/panels.md "Discount codes for several
//! automations"): the code's row and its set of automations change together, in one
//! transaction. No event: nothing else keeps a copy of a code.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use zimmer_db::models::billing::{DiscountCode, NewDiscountCode};
use zimmer_events::contracts::internal::discounts::{
    Discount, DiscountPatch, NewDiscount, RedemptionCounts,
};
use zimmer_http::{ApiError, validate::Validator};

use crate::{
    domain,
    queries::{self, DiscountChanges},
};

/// Longest description kept.
const DESCRIPTION_MAX: usize = 1_000;

/// A code as the internal API answers it: the row, its automations, its redemption counts.
pub async fn view(conn: &mut AsyncPgConnection, d: DiscountCode) -> Result<Discount, ApiError> {
    let automation_ids = queries::discount_automations(conn, d.id).await?;
    let s = queries::discount_stats(conn, d.id).await?;
    Ok(with_parts(d, automation_ids, s))
}

/// [`view`] for a page of codes: two queries per code would be a page of round trips.
pub async fn views(
    conn: &mut AsyncPgConnection,
    rows: Vec<DiscountCode>,
) -> Result<Vec<Discount>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let links = queries::automations_of_discounts(conn, &ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        let set = links
            .iter()
            .filter(|(code, _)| *code == d.id)
            .map(|(_, a)| *a)
            .collect();
        let s = queries::discount_stats(conn, d.id).await?;
        out.push(with_parts(d, set, s));
    }
    Ok(out)
}

fn with_parts(d: DiscountCode, automation_ids: Vec<i64>, s: queries::DiscountStats) -> Discount {
    Discount {
        id: d.id,
        code: d.code,
        percent_off: d.percent_off,
        active: d.active,
        starts_at: d.starts_at,
        ends_at: d.ends_at,
        max_redemptions: d.max_redemptions,
        per_user_limit: d.per_user_limit,
        automation_ids,
        description: d.description,
        created_at: d.created_at,
        updated_at: d.updated_at,
        redemptions: RedemptionCounts {
            reserved: s.reserved,
            confirmed: s.confirmed,
            released: s.released,
            over_limit: s.over_limit,
        },
    }
}

fn check_limits(
    v: &mut Validator,
    percent: Option<i32>,
    max_redemptions: Option<i32>,
    per_user_limit: Option<i32>,
) {
    if percent.is_some_and(|p| !(1..=100).contains(&p)) {
        v.error("percent_off", "must be between 1 and 100");
    }
    if max_redemptions.is_some_and(|m| m < 1) {
        v.error(
            "max_redemptions",
            "must be at least 1 (or null for no limit)",
        );
    }
    if per_user_limit.is_some_and(|m| m < 1) {
        v.error(
            "per_user_limit",
            "must be at least 1 (or null for no limit)",
        );
    }
}

fn check_window(
    v: &mut Validator,
    starts_at: Option<chrono::DateTime<chrono::Utc>>,
    ends_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && s >= e
    {
        v.error("ends_at", "must be after starts_at");
    }
}

/// A trimmed description; blank is none.
fn description(v: &mut Validator, raw: Option<&str>) -> Option<String> {
    let d = raw.map(str::trim).filter(|d| !d.is_empty())?;
    if d.chars().count() > DESCRIPTION_MAX {
        v.error("description", "is too long (at most 1000 characters)");
    }
    Some(d.to_owned())
}

/// 422 unless every id names an automation.
async fn check_automations(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<(), ApiError> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = queries::existing_automations(conn, ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(ApiError::invalid(
            "automation_ids",
            format!("no such automation: {missing}"),
        ));
    }
    Ok(())
}

fn duplicate_code(e: diesel::result::Error) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::conflict(
            "discount_code_exists",
            "A discount code with this code exists",
        ),
        other => other.into(),
    }
}

/// A new code with its automations; 409 `discount_code_exists` on a taken code.
pub async fn create(
    conn: &mut AsyncPgConnection,
    body: &NewDiscount,
) -> Result<Discount, ApiError> {
    let mut v = Validator::new();
    let code = domain::normalize_code(Some(&body.code)).unwrap_or_default();
    v.check("code", domain::valid_code(&code));
    check_limits(
        &mut v,
        Some(body.percent_off),
        body.max_redemptions,
        body.per_user_limit,
    );
    check_window(&mut v, body.starts_at, body.ends_at);
    let description = description(&mut v, body.description.as_deref());
    v.finish()?;
    let set = body.automation_set();
    check_automations(conn, &set).await?;
    conn.transaction(async |conn| {
        let d = queries::insert_discount(
            conn,
            &NewDiscountCode {
                code: &code,
                percent_off: body.percent_off,
                active: body.active.unwrap_or(true),
                starts_at: body.starts_at,
                ends_at: body.ends_at,
                max_redemptions: body.max_redemptions,
                per_user_limit: body.per_user_limit,
                description: description.as_deref(),
            },
        )
        .await
        .map_err(duplicate_code)?;
        queries::set_discount_automations(conn, d.id, &set).await?;
        view(conn, d).await
    })
    .await
}

/// The code `id`; 404 when there is none.
pub async fn existing(conn: &mut AsyncPgConnection, id: i64) -> Result<DiscountCode, ApiError> {
    queries::discount_by_id(conn, id)
        .await?
        .ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::not_found("Discount code not found")
}

/// Deletes a code nobody used and answers `true`; a used code is deactivated instead (its
/// redemptions are history) and the answer is `false`. 404 when there is none.
pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> Result<bool, ApiError> {
    existing(conn, id).await?;
    let stats = queries::discount_stats(conn, id).await?;
    if stats.reserved + stats.confirmed + stats.released == 0 {
        queries::delete_discount(conn, id).await?;
        return Ok(true);
    }
    let deactivate = DiscountChanges {
        active: Some(false),
        ..DiscountChanges::default()
    };
    queries::update_discount(conn, id, &deactivate).await?;
    Ok(false)
}

/// A partial update (absent keeps, `null` clears); 404 unknown, 409 a code another one has.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: i64,
    patch: &DiscountPatch,
) -> Result<Discount, ApiError> {
    let current = existing(conn, id).await?;
    let mut v = Validator::new();
    let code = patch.code.as_ref().map(|c| {
        let c = domain::normalize_code(Some(c)).unwrap_or_default();
        v.check("code", domain::valid_code(&c));
        c
    });
    check_limits(
        &mut v,
        patch.percent_off,
        patch.max_redemptions.flatten(),
        patch.per_user_limit.flatten(),
    );
    // The window as it will be after the change.
    check_window(
        &mut v,
        patch.starts_at.unwrap_or(current.starts_at),
        patch.ends_at.unwrap_or(current.ends_at),
    );
    let description = patch
        .description
        .as_ref()
        .map(|d| description(&mut v, d.as_deref()));
    v.finish()?;
    let set = patch.automation_set();
    if let Some(ids) = &set {
        check_automations(conn, ids).await?;
    }
    let changes = DiscountChanges {
        code,
        percent_off: patch.percent_off,
        active: patch.active,
        starts_at: patch.starts_at,
        ends_at: patch.ends_at,
        max_redemptions: patch.max_redemptions,
        per_user_limit: patch.per_user_limit,
        description,
    };
    conn.transaction(async |conn| {
        let d = queries::update_discount(conn, id, &changes)
            .await
            .map_err(duplicate_code)?
            .ok_or_else(not_found)?;
        if let Some(ids) = &set {
            queries::set_discount_automations(conn, id, ids).await?;
        }
        view(conn, d).await
    })
    .await
}
