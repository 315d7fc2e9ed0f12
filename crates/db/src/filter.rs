//! The optional filters of every list: a filter field left out (`None`) leaves the query as is.

use diesel::query_dsl::methods::FilterDsl;

/// `.filter_some(f.user_id, |u| users::id.eq(u))` rather than `if let Some(u) = f.user_id
/// { q = q.filter(users::id.eq(u)); }` on a boxed query (any query whose `filter` keeps its
/// type).
pub trait FilterSome: Sized {
    /// Filtered by `predicate(value)` when there is a value, as is otherwise.
    fn filter_some<T, P>(self, value: Option<T>, predicate: impl FnOnce(T) -> P) -> Self
    where
        Self: FilterDsl<P, Output = Self>,
    {
        match value {
            Some(v) => self.filter(predicate(v)),
            None => self,
        }
    }
}

impl<Q> FilterSome for Q {}
