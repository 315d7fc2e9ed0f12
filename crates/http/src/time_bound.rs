//! The `from` / `to` filters of the lists: an RFC 3339 instant or a UTC day.

use chrono::{DateTime, Days, NaiveDate, Utc};

use crate::ApiError;

/// The query parameter `field`: an RFC 3339 instant, or a UTC day `YYYY-MM-DD` — its start,
/// or with `end` the start of the next day (so a `to` day is included whole). Absent or
/// blank: `None`; anything else: 422 naming `field`.
pub fn time_bound(
    field: &'static str,
    raw: Option<&str>,
    end: bool,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(field, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    let day = if end {
        day.checked_add_days(Days::new(1))
            .ok_or_else(|| ApiError::invalid(field, "is out of range"))?
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::time_bound;

    #[test]
    fn instants_and_days() {
        let at = |raw, end| {
            time_bound("t", Some(raw), end)
                .ok()
                .flatten()
                .map(|t| t.to_rfc3339())
        };
        assert_eq!(
            at("2026-11-25", false).as_deref(),
            Some("2026-11-25T00:00:00+00:00")
        );
        assert_eq!(
            at("2026-11-25", true).as_deref(),
            Some("2026-11-26T00:00:00+00:00")
        );
        assert_eq!(
            at("2026-11-25T10:00:00+03:30", true).as_deref(),
            Some("2026-11-25T06:30:00+00:00")
        );
        assert!(matches!(time_bound("t", Some("  "), false), Ok(None)));
        assert!(matches!(time_bound("t", None, true), Ok(None)));
        assert!(time_bound("t", Some("25/11/2026"), false).is_err());
    }
}
