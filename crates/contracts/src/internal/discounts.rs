//! Internal API types: discounts (see internal/mod.rs). Billing owns discount codes
//! (`/internal/discounts...`); admin creates, edits and lists them for the dashboard
//! (docs/panels.md "Discount codes", "Discount codes for several automations").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Page, nullable};

/// `POST /internal/discounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct NewDiscount {
    pub code: String,
    pub percent_off: i32,
    /// Absent: active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub max_redemptions: Option<i32>,
    #[serde(default)]
    pub per_user_limit: Option<i32>,
    /// The automations the code is for; empty (or absent) means every automation.
    #[serde(default)]
    pub automation_ids: Option<Vec<i64>>,
    /// Older callers name one automation: added to `automation_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automation_id: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

impl NewDiscount {
    /// The code's set: `automation_ids` plus the older single `automation_id`, sorted, once each.
    pub fn automation_set(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.automation_ids.clone().unwrap_or_default();
        ids.extend(self.automation_id);
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// `PUT|PATCH /internal/discounts/{id}`: partial; an absent field keeps its value, `null`
/// clears a nullable one (`automation_ids: null` or `[]`: every automation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DiscountPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<Option<i32>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub per_user_limit: Option<Option<i32>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub automation_ids: Option<Option<Vec<i64>>>,
    /// Older callers: one automation (`null`: every automation). `automation_ids` wins.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub automation_id: Option<Option<i64>>,
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
}

impl DiscountPatch {
    /// The new set when the patch changes it (sorted, once each; empty = every automation).
    pub fn automation_set(&self) -> Option<Vec<i64>> {
        let mut ids = match (&self.automation_ids, self.automation_id) {
            (Some(ids), _) => ids.clone().unwrap_or_default(),
            (None, Some(one)) => one.into_iter().collect(),
            (None, None) => return None,
        };
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }
}

/// How a code's redemptions stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct RedemptionCounts {
    pub reserved: i64,
    pub confirmed: i64,
    pub released: i64,
    pub over_limit: i64,
}

/// A discount code as billing answers it (create, update, one, list items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Discount {
    pub id: i64,
    pub code: String,
    pub percent_off: i32,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_redemptions: Option<i32>,
    pub per_user_limit: Option<i32>,
    /// Empty: every automation.
    pub automation_ids: Vec<i64>,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub redemptions: RedemptionCounts,
}

/// `GET /internal/discounts`: a page, newest first.
pub type DiscountList = Page<Discount>;

/// One redemption (`GET /internal/discounts/{id}/redemptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Redemption {
    pub id: i64,
    pub discount_id: i64,
    pub user_id: i64,
    pub payment_id: i64,
    /// reserved, confirmed, released, over_limit.
    pub status: String,
    pub amount_before: i64,
    pub amount_discount: i64,
    pub amount_after: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /internal/discounts/{id}/redemptions`: a page, newest first.
pub type RedemptionList = Page<Redemption>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null() {
        let p: DiscountPatch =
            serde_json::from_str(r#"{"ends_at": null, "automation_ids": [3, 1, 3]}"#)
                .unwrap_or_default();
        assert_eq!(p.ends_at, Some(None));
        assert_eq!(p.starts_at, None);
        assert_eq!(p.automation_set(), Some(vec![1, 3]));
        let p: DiscountPatch =
            serde_json::from_str(r#"{"automation_ids": null}"#).unwrap_or_default();
        assert_eq!(p.automation_set(), Some(vec![]));
        let p: DiscountPatch = serde_json::from_str(r#"{"automation_id": 4}"#).unwrap_or_default();
        assert_eq!(p.automation_set(), Some(vec![4]));
        assert_eq!(DiscountPatch::default().automation_set(), None);
    }

    #[test]
    fn new_code_merges_the_older_single_automation() {
        let n: NewDiscount = serde_json::from_str(
            r#"{"code": "x", "percent_off": 5, "automation_id": 2, "automation_ids": [7]}"#,
        )
        .unwrap_or_default();
        assert_eq!(n.automation_set(), vec![2, 7]);
    }
}
