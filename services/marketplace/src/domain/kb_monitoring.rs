//! Pure rules of KB monitoring (docs/panels.md "KB monitoring: status, reset, history"): what a
//! vendor's KB status answer means, the history filters (UTC days, paging) and the per-day
//! chart.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;
use zimmer_events::contracts::internal::kb_monitoring::{
    KbChart, KbChartPoint, KbDateRange, KbHistoryStats,
};

/// The four words `kb_health` (and `kb_status_history.kb_health`) may hold.
pub const HEALTHY: &str = "healthy";
pub const WARNING: &str = "warning";
pub const PROBLEMATIC: &str = "problematic";
pub const ERROR: &str = "error";

/// What a customer whose vendor was not reached before the status request's time limit is
/// reported with.
pub const NOT_CHECKED: &str = "not checked: time limit";

/// The date format of the history filters, named in the 400 a malformed date gets.
pub const DATE_FORMAT: &str = "YYYY-MM-DD";

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;
pub const DEFAULT_DAYS: i64 = 7;
pub const MAX_DAYS: i64 = 30;

/// One customer's knowledge base as the vendor described it (or why it could not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbCheck {
    pub kb_health: &'static str,
    pub backup_status: bool,
    pub supports_reset: bool,
    pub error_logs: Vec<String>,
    /// The vendor's `last_updated`, when it gave a valid RFC 3339 time.
    pub last_updated: Option<DateTime<Utc>>,
}

impl KbCheck {
    /// A check that did not produce a vendor answer: `error`, with the reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self {
            kb_health: ERROR,
            backup_status: false,
            supports_reset: false,
            error_logs: vec![reason.into()],
            last_updated: None,
        }
    }
}

/// The vendor's `status` word as a `kb_health`: healthy/ok → healthy, warning/degraded →
/// warning, problematic → problematic (case-insensitive); anything else is not a health.
pub fn health_of(status: &str) -> Option<&'static str> {
    match status.trim().to_ascii_lowercase().as_str() {
        "healthy" | "ok" => Some(HEALTHY),
        "warning" | "degraded" => Some(WARNING),
        "problematic" => Some(PROBLEMATIC),
        _ => None,
    }
}

/// Longest error line kept from a vendor, and how many lines: the history keeps each answer.
const MAX_LINE: usize = 1_000;
const MAX_LINES: usize = 50;

fn line(s: &str) -> String {
    s.chars().take(MAX_LINE).collect()
}

/// Reads a 2xx answer of the vendor's KB status URL. `backup_status` and `supports_reset` are
/// its booleans (false when absent), `error_logs` its strings (a single string is one line;
/// absent → none), `last_updated` its time. A `status` that is missing or not one of the known
/// words makes the row `error`, with what the vendor said added to the lines.
pub fn read_status_answer(body: &Value) -> KbCheck {
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mut error_logs: Vec<String> = match body.get("error_logs") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(line(s)),
                Value::Null => None,
                other => Some(line(&other.to_string())),
            })
            .take(MAX_LINES)
            .collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![line(s)],
        _ => Vec::new(),
    };
    let status = body.get("status").and_then(Value::as_str);
    let kb_health = match status.and_then(health_of) {
        Some(h) => h,
        None => {
            error_logs.push(match status {
                Some(s) => line(&format!("vendor reported an unknown status: {s}")),
                None => "vendor answer has no status".to_owned(),
            });
            ERROR
        }
    };
    let last_updated = body
        .get("last_updated")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    KbCheck {
        kb_health,
        backup_status: flag("backup_status"),
        supports_reset: flag("supports_reset"),
        error_logs,
        last_updated,
    }
}

/// A UTC day of the history filters; blank is no filter. The error names the format.
pub fn parse_day(field: &str, raw: Option<&str>) -> Result<Option<NaiveDate>, String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{field} must be a date in the format {DATE_FORMAT}")),
    }
}

/// `[from, to)` instants of inclusive days: the start of `from`'s day and the start of the day
/// after `to`.
pub fn day_bounds(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let start = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    (
        from.and_then(start),
        to.and_then(|d| d.succ_opt()).and_then(start),
    )
}

/// `(offset, limit)` of a history page: `limit` 1–100 (default 50), `page` ≥ 1 (default 1).
pub fn history_page(page: Option<i64>, limit: Option<i64>) -> Result<(i64, i64), String> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(format!("limit must be between 1 and {MAX_LIMIT}"));
    }
    let page = page.unwrap_or(1);
    if page < 1 {
        return Err("page must be 1 or more".to_owned());
    }
    // Far pages would overflow the offset; nothing is that deep anyway.
    let offset = (page - 1)
        .checked_mul(limit)
        .ok_or_else(|| "page is too large".to_owned())?;
    Ok((offset, limit))
}

/// Chart length: 1–30 days (default 7).
pub fn chart_days(days: Option<i64>) -> Result<i64, String> {
    let days = days.unwrap_or(DEFAULT_DAYS);
    if (1..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(format!("days must be between 1 and {MAX_DAYS}"))
    }
}

/// The first day of a chart of `days` days ending `today`.
pub fn chart_start(today: NaiveDate, days: i64) -> NaiveDate {
    today - Duration::days(days.max(1) - 1)
}

/// Stats from the row count per `kb_health` and the count with a backup. Error rows count
/// as problematic (the dashboard has no error column).
pub fn stats(per_health: &HashMap<String, i64>, backup_count: i64) -> KbHistoryStats {
    let n = |h: &str| per_health.get(h).copied().unwrap_or(0);
    KbHistoryStats {
        total_records: per_health.values().sum(),
        healthy_count: n(HEALTHY),
        warning_count: n(WARNING),
        problematic_count: n(PROBLEMATIC) + n(ERROR),
        backup_count,
    }
}

/// The chart: one point per UTC day from `chart_start(today, days)` to `today`, oldest first,
/// days without rows as zeros. `rows` are `(day, kb_health, count)`; days outside the range are
/// ignored.
pub fn chart(today: NaiveDate, days: i64, rows: &[(NaiveDate, String, i64)]) -> KbChart {
    let start = chart_start(today, days);
    let mut points: Vec<KbChartPoint> = Vec::new();
    let mut index: HashMap<NaiveDate, usize> = HashMap::new();
    let mut day = start;
    while day <= today {
        index.insert(day, points.len());
        points.push(KbChartPoint {
            date: day.format("%Y-%m-%d").to_string(),
            healthy: 0,
            warning: 0,
            problematic: 0,
            total: 0,
        });
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    for (day, health, count) in rows {
        let Some(p) = index.get(day).and_then(|&i| points.get_mut(i)) else {
            continue;
        };
        match health.as_str() {
            HEALTHY => p.healthy += count,
            WARNING => p.warning += count,
            PROBLEMATIC | ERROR => p.problematic += count,
            _ => {}
        }
        p.total += count;
    }
    KbChart {
        chart_data: points,
        date_range: KbDateRange {
            start_date: start.format("%Y-%m-%d").to_string(),
            end_date: today.format("%Y-%m-%d").to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn vendor_status_words_map_to_kb_health() {
        for (word, health) in [
            ("healthy", Some(HEALTHY)),
            ("OK", Some(HEALTHY)),
            ("ok", Some(HEALTHY)),
            ("warning", Some(WARNING)),
            ("Degraded", Some(WARNING)),
            ("problematic", Some(PROBLEMATIC)),
            ("broken", None),
            ("", None),
            ("error", None),
        ] {
            assert_eq!(health_of(word), health, "{word}");
        }
    }

    #[test]
    fn a_status_answer_is_read_with_defaults() {
        let c = read_status_answer(&json!({
            "status": "degraded",
            "backup_status": true,
            "supports_reset": true,
            "error_logs": ["index stale", 42, null],
            "last_updated": "2026-12-01T10:00:00+03:30",
        }));
        assert_eq!(c.kb_health, WARNING);
        assert!(c.backup_status && c.supports_reset);
        assert_eq!(
            c.error_logs,
            vec!["index stale".to_owned(), "42".to_owned()]
        );
        assert_eq!(
            c.last_updated.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-01T06:30:00+00:00")
        );

        let c = read_status_answer(&json!({ "status": "ok" }));
        assert_eq!(
            (c.kb_health, c.backup_status, c.supports_reset),
            (HEALTHY, false, false)
        );
        assert!(c.error_logs.is_empty() && c.last_updated.is_none());

        let c = read_status_answer(&json!({ "status": "on fire", "error_logs": "disk" }));
        assert_eq!(c.kb_health, ERROR);
        assert_eq!(
            c.error_logs,
            vec![
                "disk".to_owned(),
                "vendor reported an unknown status: on fire".to_owned()
            ]
        );
        let c = read_status_answer(&json!([1, 2]));
        assert_eq!(c.kb_health, ERROR);
        assert_eq!(c.error_logs, vec!["vendor answer has no status".to_owned()]);
    }

    #[test]
    fn dates_are_inclusive_utc_days_and_malformed_ones_name_the_format() {
        assert_eq!(parse_day("from_date", Some(" ")), Ok(None));
        let from = parse_day("from_date", Some("2026-12-01")).ok().flatten();
        let to = parse_day("to_date", Some("2026-12-03")).ok().flatten();
        let (a, b) = day_bounds(from, to);
        assert_eq!(
            a.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-01T00:00:00+00:00")
        );
        assert_eq!(
            b.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-12-04T00:00:00+00:00")
        );
        for bad in [
            "2026-13-01",
            "01/12/2026",
            "2026-12-01T00:00:00Z",
            "yesterday",
        ] {
            let e = parse_day("from_date", Some(bad)).err().unwrap_or_default();
            assert!(
                e.contains("YYYY-MM-DD") && e.contains("from_date"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn history_paging_and_chart_days_are_bounded() {
        assert_eq!(history_page(None, None), Ok((0, 50)));
        assert_eq!(history_page(Some(3), Some(20)), Ok((40, 20)));
        assert_eq!(history_page(Some(1), Some(100)), Ok((0, 100)));
        assert!(history_page(Some(0), None).is_err());
        assert!(history_page(None, Some(0)).is_err());
        assert!(history_page(None, Some(101)).is_err());
        assert!(history_page(Some(i64::MAX), Some(100)).is_err());
        assert_eq!(chart_days(None), Ok(7));
        assert_eq!(chart_days(Some(30)), Ok(30));
        assert!(chart_days(Some(0)).is_err() && chart_days(Some(31)).is_err());
    }

    #[test]
    fn stats_count_errors_as_problematic() {
        let per: HashMap<String, i64> = [
            ("healthy".to_owned(), 5),
            ("warning".to_owned(), 2),
            ("problematic".to_owned(), 1),
            ("error".to_owned(), 3),
        ]
        .into();
        assert_eq!(
            stats(&per, 4),
            KbHistoryStats {
                total_records: 11,
                healthy_count: 5,
                warning_count: 2,
                problematic_count: 4,
                backup_count: 4,
            }
        );
        assert_eq!(stats(&HashMap::new(), 0), KbHistoryStats::default());
    }

    #[test]
    fn the_chart_is_zero_filled_oldest_first_ending_today() {
        let today = day("2026-12-03");
        let rows = vec![
            (day("2026-12-01"), "healthy".to_owned(), 2),
            (day("2026-12-01"), "error".to_owned(), 1),
            (day("2026-12-03"), "warning".to_owned(), 4),
            (day("2026-12-03"), "problematic".to_owned(), 1),
            // Outside the range: ignored.
            (day("2026-11-20"), "healthy".to_owned(), 9),
        ];
        let c = chart(today, 4, &rows);
        let dates: Vec<&str> = c.chart_data.iter().map(|p| p.date.as_str()).collect();
        assert_eq!(
            dates,
            vec!["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]
        );
        let p = &c.chart_data[1];
        assert_eq!((p.healthy, p.warning, p.problematic, p.total), (2, 0, 1, 3));
        let p = &c.chart_data[2];
        assert_eq!((p.healthy, p.warning, p.problematic, p.total), (0, 0, 0, 0));
        let p = &c.chart_data[3];
        assert_eq!((p.healthy, p.warning, p.problematic, p.total), (0, 4, 1, 5));
        assert_eq!(c.date_range.start_date, "2026-11-30");
        assert_eq!(c.date_range.end_date, "2026-12-03");
        assert_eq!(chart(today, 1, &[]).chart_data.len(), 1);
    }
}
