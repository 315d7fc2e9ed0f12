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
    }
}
