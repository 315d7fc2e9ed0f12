//! Pure rules of the backups (docs/operations.md "Backups"): when a scheduled run is due, how a
//! database URL becomes libpq settings, which tables an archive listing names.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use tokio::process::Command;
use zimmer_config::Secret;

/// When scheduled runs happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// When the last run started this long ago (`BACKUP_INTERVAL_HOURS`).
    Every(Duration),
    /// Once a day, at or after this UTC time (`BACKUP_DAILY_AT`).
    DailyAt(chrono::NaiveTime),
}

impl Schedule {
    /// Whether a run is due at `now` when the last one started at `last` (or never did).
    pub fn due(self, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let Some(last) = last else {
            return true;
        };
        match self {
            Self::Every(every) => {
                now.signed_duration_since(last).to_std().unwrap_or_default() >= every
            }
            Self::DailyAt(at) => {
                let today = now.date_naive().and_time(at).and_utc();
                // The latest slot that has come: today's, or yesterday's before today's time.
                let slot = if now >= today {
                    today
                } else {
                    today - chrono::Duration::days(1)
                };
                last < slot
            }
        }
    }
}

/// Where a PostgreSQL client connects, as libpq environment variables.
#[derive(Debug, Clone)]
pub struct PgTarget {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<Secret>,
    pub dbname: String,
    sslmode: Option<String>,
    pub url: Secret,
}

impl PgTarget {
    pub fn parse(url: &str) -> Option<Self> {
        let u = reqwest::Url::parse(url).ok()?;
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return None;
        }
        let query: BTreeMap<String, String> = u.query_pairs().into_owned().collect();
        let host = query
            .get("host")
            .cloned()
            .or_else(|| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned());
        let user = Some(percent_decode(u.username())).filter(|s| !s.is_empty());
        let password = u.password().map(|p| Secret::new(percent_decode(p)));
        let dbname = percent_decode(u.path().trim_start_matches('/'));
        Some(Self {
            host,
            port: u.port().unwrap_or(5432),
            dbname: if dbname.is_empty() {
                user.clone().unwrap_or_else(|| "postgres".to_owned())
            } else {
                dbname
            },
            user,
            password,
            sslmode: query.get("sslmode").cloned(),
            url: Secret::new(url),
        })
    }

    pub fn same_database(&self, other: &Self) -> bool {
        self.host == other.host && self.port == other.port && self.dbname == other.dbname
    }

    /// The libpq environment of a child process (credentials never on its command line).
    pub fn apply(&self, cmd: &mut Command) {
        for var in [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE",
            "PGSSLMODE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGDATABASE", &self.dbname)
            .env("PGCONNECT_TIMEOUT", "10");
        if let Some(u) = &self.user {
            cmd.env("PGUSER", u);
        }
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p.expose());
        }
        if let Some(s) = &self.sslmode {
            cmd.env("PGSSLMODE", s);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or_default();
        if c == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Table names in a `pg_restore --list` listing (`123; 1259 16390 TABLE public users owner`).
pub fn archived_tables(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let rest = l.split_once("; ")?.1;
            let mut words = rest.split_whitespace().skip(2);
            (words.next()? == "TABLE" && words.next()? == "public")
                .then(|| words.next().map(str::to_owned))
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_libpq_settings() {
        let t = PgTarget::parse("postgres://zim%40mer:p%2Fw@db:6432/zimmer?sslmode=require");
        let t = t.map(|t| (t.host, t.port, t.user, t.dbname, t.sslmode));
        assert_eq!(
            t,
            Some((
                "db".to_owned(),
                6432,
                Some("zim@mer".to_owned()),
                "zimmer".to_owned(),
                Some("require".to_owned())
            ))
        );
        assert!(PgTarget::parse("mysql://x/y").is_none());
    }

    #[test]
    fn schedules() {
        let t = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
        };
        let now = t("2026-12-03T14:00:00Z").unwrap_or_default();
        let at =
            |h| Schedule::DailyAt(chrono::NaiveTime::from_hms_opt(h, 30, 0).unwrap_or_default());
        assert!(at(2).due(None, now));
        // 02:30 today has come: a run is due unless one started since.
        assert!(at(2).due(t("2026-12-03T02:29:00Z"), now));
        assert!(!at(2).due(t("2026-12-03T02:31:00Z"), now));
        // 20:30 today has not come: yesterday's slot counts.
        assert!(!at(20).due(t("2026-12-02T20:31:00Z"), now));
        assert!(at(20).due(t("2026-12-02T20:29:00Z"), now));
        let every = Schedule::Every(Duration::from_secs(3600));
        assert!(every.due(t("2026-12-03T12:59:00Z"), now));
        assert!(!every.due(t("2026-12-03T13:01:00Z"), now));
    }

    #[test]
    fn listings_name_their_tables() {
        let listing = ";\n; Archive created\n;\n215; 1259 16390 TABLE public users postgres\n\
                       216; 1259 16391 SEQUENCE public users_id_seq postgres\n\
                       3500; 0 16390 TABLE DATA public users postgres\n";
        assert_eq!(archived_tables(listing), vec!["users".to_owned()]);
    }
}
