//! The list shape of every endpoint (docs/api.md): `page` from 1, `page_size` default 20, max 100,
//! answered as `{"items", "total", "page", "page_size"}`.

use serde::{Deserialize, Serialize};

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// Query parameters of a paged list. Out-of-range values are clamped, not refused: a client
/// asking for page 0 or 10 000 items gets the nearest sensible page.
#[derive(Debug, Clone, Copy, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page, from 1 (default 1).
    #[serde(default)]
    pub page: Option<i64>,
    /// Items per page (default 20, at most 100).
    #[serde(default)]
    pub page_size: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }
    pub fn page_size(&self) -> i64 {
        self.page_size
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE)
    }
    pub fn offset(&self) -> i64 {
        (self.page() - 1).saturating_mul(self.page_size())
    }
    pub fn limit(&self) -> i64 {
        self.page_size()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub page_size: i64,
}

impl<T> Paged<T> {
    pub fn new(items: Vec<T>, total: i64, query: &PageQuery) -> Self {
        Self {
            items,
            total,
            page: query.page(),
            page_size: query.page_size(),
        }
    }
}

/// Where a page of a list stands, in both vocabularies: `limit`/`offset` (what list UIs send)
/// and `page`/`page_size` (docs/api.md). Each list decides which one wins when both are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
    pub page: i64,
    pub page_size: i64,
}

impl Window {
    /// `limit` items from `offset` (`limit` at least 1), on the page they start in.
    pub fn at(limit: i64, offset: i64) -> Self {
        Self {
            limit,
            offset,
            page: offset / limit + 1,
            page_size: limit,
        }
    }

    /// The page `query` asks for.
    pub fn of(query: &PageQuery) -> Self {
        Self {
            limit: query.limit(),
            offset: query.offset(),
            page: query.page(),
            page_size: query.page_size(),
        }
    }

    /// The answer `{items, total, page, page_size, limit, offset}`.
    pub fn answer<T>(self, items: Vec<T>, total: i64) -> WindowPage<T> {
        WindowPage {
            items,
            total,
            window: self,
        }
    }
}

/// A list page with its [`Window`] in both vocabularies. Also a route's documented answer
/// (`.ok::<WindowPage<Item>>()`, documented as `WindowPage_Item`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowPage<T> {
    pub items: Vec<T>,
    pub total: i64,
    #[serde(flatten)]
    pub window: Window,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps() {
        let q = PageQuery {
            page: Some(0),
            page_size: Some(1000),
        };
        assert_eq!((q.page(), q.page_size(), q.offset()), (1, 100, 0));
        let q = PageQuery {
            page: Some(3),
            page_size: None,
        };
        assert_eq!((q.page(), q.page_size(), q.offset()), (3, 20, 40));
        assert_eq!(Window::of(&q), Window::at(20, 40));
    }

    #[test]
    fn window_answer_carries_both_vocabularies() {
        let page = Window::at(10, 25).answer(vec![1], 31);
        assert_eq!(
            serde_json::to_value(page).unwrap(),
            serde_json::json!({
                "items": [1], "total": 31, "page": 3, "page_size": 10, "limit": 10, "offset": 25,
            })
        );
    }
}
