//! Backups through the real admin service, real PostgreSQL and the real `pg_dump`/`pg_restore`:
//! a trigger makes a recorded, checksummed, verified archive; with a scratch database the
//! archive restores into an empty database with the source's row counts; one job at a time
//! (409); a failed dump leaves a failed row and no file; cleanup keeps the newest successful
//! backup; the schedule runs on its own; only managers and the technical team get in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use common::{Call, With, World, body};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use zimmer_jwt::Role;
use zimmer_testkit::{TempDir, str_at};

async fn world(dir: &TempDir, extra: &[(&str, &str)]) -> World {
    World::with_backups(With::NONE, dir, extra).await
}

async fn post(w: &World, path: &str, token: &str) -> (StatusCode, Value) {
    let res = w
        .admin
        .client
        .post(w.admin.url(path))
        .bearer_auth(token)
        .call()
        .await;
    body(res).await
}

fn sha256_hex(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A few rows in the key tables, so that counts mean something.
async fn seed(w: &World) -> i64 {
    let mut customers = Vec::new();
    for i in 0..3 {
        let (id, _) = w.user(&format!("c{i}@example.com"), Role::Customer).await;
        customers.push(id);
    }
    for (i, c) in customers.iter().enumerate() {
        w.automation_for(*c, &format!("bot {i}"), 100).await;
        w.sql(&format!(
            "INSERT INTO tickets (user_id, title, description) VALUES ({c}, 'help {i}', 'broken')"
        ))
        .await;
    }
    customers[0]
}

/// Triggers a backup as the holder of `token`; asserts it succeeded, verified by `method`
/// (`list` or `restore`), and returns its id.
async fn backed_up(w: &World, token: &str, method: &str) -> i64 {
    let (status, answer) = post(w, "/api/admin/backups/trigger", token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "success", "{answer}");
    let message = str_at(&answer, "message");
    assert!(
        message.contains(&format!("verified ({method})")),
        "{answer}"
    );
    answer["backup_id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_triggered_backup_is_recorded_checksummed_and_verified_by_listing() {
    let dir = TempDir::new("admin-backups");
    let w = world(&dir, &[]).await;
    seed(&w).await;
    let (tech_id, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;

    let id = backed_up(&w, &tech, "list").await;

    let list = w.json("/api/admin/backups?", &tech).await;
    let rows = list.as_array().expect("a bare array");
    assert_eq!(rows.len(), 1, "{list}");
    let row = &rows[0];
    assert_eq!(row["id"], id);
    assert_eq!(row["status"], "success");
    assert_eq!(row["storage_location"], "local");
    assert_eq!(row["trigger"], "manual");
    assert_eq!(row["actor_id"], tech_id);
    assert_eq!(row["verified"], true);
    assert_eq!(row["verify_method"], "list");
    assert!(row["created_at"].is_string() && row["backup_date"].is_string());
    assert!(row.get("file_path").is_none(), "the path stays internal");
    let name = str_at(row, "file_name");
    assert!(name.starts_with("zimmer-") && name.ends_with(&format!("-{}.dump", w.ctx.db.name)));

    // The file is the recorded size and checksum, private, and the only file left.
    assert_eq!(files_in(&dir.path), vec![name.to_owned()]);
    let path = dir.path.join(name);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.is_empty());
    assert_eq!(row["file_size"].as_i64().unwrap(), bytes.len() as i64);
    assert_eq!(str_at(row, "checksum_sha256"), sha256_hex(&bytes));
    assert_eq!(
        bytes.get(..5),
        Some(&b"PGDMP"[..]),
        "a custom-format archive"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(&dir.path).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);

    let stats = w.json("/api/admin/backups/stats", &tech).await;
    assert_eq!(stats["total_backups"], 1, "{stats}");
    assert_eq!(stats["successful_backups"], 1);
    assert_eq!(stats["failed_backups"], 0);
    assert_eq!(stats["verified_backups"], 1);
    assert_eq!(
        stats["total_size_bytes"].as_i64().unwrap(),
        bytes.len() as i64
    );
    assert!(stats["last_successful_backup"].is_string());

    // Verify again: list only (no scratch database).
    let (status, v) = post(&w, &format!("/api/admin/backups/verify/{id}"), &tech).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["verify_method"], "list");

    // A damaged file fails verification at the checksum step.
    let mut damaged = bytes.clone();
    damaged.push(0);
    std::fs::write(&path, &damaged).unwrap();
    let (status, v) = post(&w, &format!("/api/admin/backups/verify/{id}"), &tech).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(str_at(&v, "detail").contains("checksum"), "{v}");

    // Unknown ids and non-numeric ones: 404 JSON.
    let (status, v) = post(&w, "/api/admin/backups/verify/999999", &tech).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, _) = post(&w, "/api/admin/backups/verify/..%2F..%2Fetc", &tech).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Filters: a bad status or date is a 4xx, never a 500.
    let res = w.get("/api/admin/backups?status_filter=bogus", &tech).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let res = w.get("/api/admin/backups?from_date=yesterday", &tech).await;
    assert!(res.status().is_client_error());
    let failed = w
        .json("/api/admin/backups?status_filter=failed", &tech)
        .await;
    assert_eq!(failed, json!([]));

    // Audited.
    let audited = w
        .count("SELECT count(*) AS n FROM admin_audit_log WHERE action LIKE 'backup.%'")
        .await;
    assert_eq!(audited, 3);
}

/// An empty database of this test's own, dropped at the end.
struct EmptyDb {
    name: String,
    url: String,
}

fn server_url(db: &str) -> String {
    let admin = std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    match admin.rfind('/') {
        Some(i) => format!("{}/{db}", &admin[..i]),
        None => format!("{admin}/{db}"),
    }
}

impl EmptyDb {
    async fn new() -> Self {
        let name = format!("zimmer_test_scratch_{}", Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&server_url("postgres"))
            .await
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            url: server_url(&name),
            name,
        }
    }

    async fn drop_now(self) {
        let mut conn = AsyncPgConnection::establish(&server_url("postgres"))
            .await
            .unwrap();
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_restores_into_an_empty_scratch_database_with_the_source_row_counts() {
    let dir = TempDir::new("admin-backups-restore");
    let scratch = EmptyDb::new().await;
    let w = world(
        &dir,
        &[("BACKUP_VERIFY_DATABASE_URL", scratch.url.as_str())],
    )
    .await;
    seed(&w).await;
    let (_, manager) = w.user("boss@example.com", Role::Manager).await;

    let id = backed_up(&w, &manager, "restore").await;
    let rows = w.json("/api/admin/backups", &manager).await;
    assert_eq!(rows[0]["verify_method"], "restore", "{rows}");

    // Verify again and compare the restored counts with the source's (nothing wrote since).
    let (status, v) = post(&w, &format!("/api/admin/backups/verify/{id}"), &manager).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["verify_method"], "restore");
    let counts = &v["row_counts"];
    for table in ["users", "automations", "user_automations", "tickets"] {
        let source = w.count(&format!("SELECT count(*) AS n FROM {table}")).await;
        assert!(source > 0, "{table} was seeded");
        assert_eq!(counts[table].as_i64(), Some(source), "{table}: {counts}");
        let mut conn = zimmer_testkit::connect(&scratch.url).await;
        let restored =
            zimmer_testkit::count(&mut conn, &format!("SELECT count(*) AS n FROM {table}")).await;
        assert_eq!(restored, source, "{table} in the scratch database");
    }
    drop(w);
    scratch.drop_now().await;
}

#[test]
fn the_live_database_is_refused_as_the_scratch_one() {
    let settings = zimmer_config::Settings::load(
        "admin",
        zimmer_config::Env::from_pairs([
            ("DATABASE_URL", "postgres://u@db:5432/zimmer"),
            ("BACKUP_VERIFY_DATABASE_URL", "postgres://other@db/zimmer"),
        ]),
    )
    .unwrap();
    assert!(zimmer_admin::config::BackupConfig::from_settings(&settings).is_err());
}

/// A `pg_dump` that takes its time, so that two jobs overlap for sure.
fn slow_pg_dump(dir: &TempDir) -> String {
    let path = dir.path.join("slow_pg_dump.sh");
    std::fs::write(&path, "#!/bin/sh\nsleep 2\nexec pg_dump \"$@\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_backup_job_at_a_time_a_second_trigger_gets_409() {
    let bin_dir = TempDir::new("admin-backups-bin");
    let bin = slow_pg_dump(&bin_dir);
    let dir = TempDir::new("admin-backups-lock");
    let w = world(&dir, &[("PG_DUMP_BIN", bin.as_str())]).await;
    let [(_, tech), (_, manager)] = w.staff([Role::TechnicalTeam, Role::Manager]).await;

    let first = post(&w, "/api/admin/backups/trigger", &tech);
    let second = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // While the first runs: it is not listed, and every other job is refused.
        let listed = w.json("/api/admin/backups", &manager).await;
        let verify = post(&w, "/api/admin/backups/verify/1", &manager).await;
        let cleanup = w
            .send(
                Method::DELETE,
                "/api/admin/backups/cleanup?retention_days=7",
                &manager,
                &json!({}),
            )
            .await
            .status();
        (
            post(&w, "/api/admin/backups/trigger", &manager).await,
            listed,
            verify,
            cleanup,
        )
    };
    let ((s1, a1), ((s2, a2), listed, _verify, cleanup)) = tokio::join!(first, second);
    assert_eq!(s1, StatusCode::OK, "{a1}");
    assert_eq!(a1["status"], "success");
    assert_eq!(s2, StatusCode::CONFLICT, "{a2}");
    assert_eq!(a2["code"], "backup_running");
    assert!(str_at(&a2, "detail").contains("already running"));
    assert_eq!(listed, json!([]), "a run in progress is not listed");
    assert_eq!(cleanup, StatusCode::CONFLICT);
    assert_eq!(
        w.count("SELECT count(*) AS n FROM backup_logs").await,
        1,
        "the refused trigger recorded nothing"
    );

    // Once it is over the lock is free again.
    let (s3, a3) = post(&w, "/api/admin/backups/trigger", &manager).await;
    assert_eq!(s3, StatusCode::OK, "{a3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_dump_leaves_a_failed_row_and_no_file() {
    let bin_dir = TempDir::new("admin-backups-bin");
    let bin = bin_dir.path.join("broken_pg_dump.sh");
    std::fs::write(
        &bin,
        "#!/bin/sh\necho partial\necho 'pg_dump: error: disk full' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = TempDir::new("admin-backups-fail");
    let w = world(&dir, &[("PG_DUMP_BIN", bin.to_str().unwrap())]).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;

    let (status, answer) = post(&w, "/api/admin/backups/trigger", &tech).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "failed", "{answer}");
    assert!(str_at(&answer, "message").contains("disk full"), "{answer}");
    let rows = w
        .json("/api/admin/backups?status_filter=failed", &tech)
        .await;
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert!(rows[0]["error"].as_str().unwrap().contains("disk full"));
    assert_eq!(rows[0]["verified"], false);
    assert!(
        files_in(&dir.path).is_empty(),
        "the partial file is removed"
    );
    let stats = w.json("/api/admin/backups/stats", &tech).await;
    assert_eq!(stats["failed_backups"], 1);
    assert_eq!(stats["last_successful_backup"], Value::Null);
    // A failed backup cannot be verified.
    let id = rows[0]["id"].as_i64().unwrap();
    let (status, _) = post(&w, &format!("/api/admin/backups/verify/{id}"), &tech).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_removes_old_backups_but_never_the_newest_successful_one() {
    let dir = TempDir::new("admin-backups-cleanup");
    let w = world(&dir, &[]).await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    for _ in 0..3 {
        let (status, a) = post(&w, "/api/admin/backups/trigger", &tech).await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(a["status"], "success", "{a}");
    }
    assert_eq!(files_in(&dir.path).len(), 3);
    // Every run is now ten days old, the newest successful one too: only the rule "never the
    // newest successful" keeps it. And a failed run a month ago (no file).
    w.sql("UPDATE backup_logs SET backup_date = now() - interval '10 days'")
        .await;
    let old_failed = w
        .insert(
            "INSERT INTO backup_logs (database_name, file_name, file_path, status, trigger, \
             backup_date) VALUES ('x', 'zimmer-old-x.dump', 'zimmer-old-x.dump', 'failed', \
             'scheduled', now() - interval '30 days') RETURNING id",
        )
        .await;

    for bad in ["0", "366", "abc"] {
        let payload = json!({});
        w.send_expecting(
            Method::DELETE,
            &format!("/api/admin/backups/cleanup?retention_days={bad}"),
            &tech,
            &payload,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let payload = json!({});
    let answer = w
        .send_expecting(
            Method::DELETE,
            "/api/admin/backups/cleanup?retention_days=7",
            &tech,
            &payload,
            StatusCode::OK,
        )
        .await;
    assert_eq!(answer["deleted_count"], 3, "{answer}");
    assert!(answer["message"].is_string());
    let cleaned: Vec<&str> = answer["cleaned_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(cleaned.contains(&"zimmer-old-x.dump"));
    let left = w.json("/api/admin/backups", &tech).await;
    let left = left.as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["id"], old_failed);
    let kept = left[0]["file_name"].as_str().unwrap().to_owned();
    assert_eq!(
        files_in(&dir.path),
        vec![kept.clone()],
        "the files went with their rows"
    );
    assert!(!cleaned.contains(&kept.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schedule_makes_a_backup_on_its_own() {
    let dir = TempDir::new("admin-backups-schedule");
    let w = world(&dir, &[("BACKUP_INTERVAL_HOURS", "24")]).await;
    zimmer_testkit::eventually("a scheduled backup", common::WAIT, || async {
        w.count(
            "SELECT count(*) AS n FROM backup_logs WHERE trigger = 'scheduled' \
             AND status = 'success' AND actor_id IS NULL",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(files_in(&dir.path).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backups_are_for_managers_and_the_technical_team_and_off_without_a_directory() {
    let dir = TempDir::new("admin-backups-rbac");
    let w = world(&dir, &[]).await;
    let (_, customer) = w.user("c@example.com", Role::Customer).await;
    let (_, support) = w.user("s@example.com", Role::SupportStaff).await;
    let calls: [(Method, &str); 5] = [
        (Method::GET, "/api/admin/backups"),
        (Method::GET, "/api/admin/backups/stats"),
        (Method::POST, "/api/admin/backups/trigger"),
        (Method::POST, "/api/admin/backups/verify/1"),
        (
            Method::DELETE,
            "/api/admin/backups/cleanup?retention_days=7",
        ),
    ];
    for (m, path) in &calls {
        for token in [&customer, &support] {
            w.send_expecting(m.clone(), path, token, &json!({}), StatusCode::FORBIDDEN)
                .await;
        }
        let res = w
            .admin
            .client
            .request(m.clone(), w.admin.url(path))
            .call()
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{m} {path}");
    }
    assert!(files_in(&dir.path).is_empty(), "nothing ran");

    // Without BACKUP_DIR: an empty list, zero stats, and a trigger says why it cannot.
    let off = World::start(With::NONE).await;
    let (_, tech) = off.user("t@example.com", Role::TechnicalTeam).await;
    assert_eq!(off.json("/api/admin/backups", &tech).await, json!([]));
    let stats = off.json("/api/admin/backups/stats", &tech).await;
    assert_eq!(stats["total_backups"], 0);
    let (status, answer) = post(&off, "/api/admin/backups/trigger", &tech).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(str_at(&answer, "detail").contains("BACKUP_DIR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_longer_than_the_wait_answers_202_and_finishes_on_its_own() {
    let bin_dir = TempDir::new("admin-backups-bin");
    let bin = slow_pg_dump(&bin_dir);
    let dir = TempDir::new("admin-backups-202");
    let w = world(
        &dir,
        &[
            ("PG_DUMP_BIN", bin.as_str()),
            ("BACKUP_TRIGGER_WAIT_SECS", "0"),
        ],
    )
    .await;
    let (_, tech) = w.user("tech@example.com", Role::TechnicalTeam).await;
    let (status, answer) = post(&w, "/api/admin/backups/trigger", &tech).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "success");
    assert_eq!(answer["message"], "started, still running");
    let id = answer["backup_id"].as_i64().unwrap();
    zimmer_testkit::eventually("the run to finish", common::WAIT, || async {
        w.count(&format!(
            "SELECT count(*) AS n FROM backup_logs WHERE id = {id} AND status = 'success' \
             AND verified"
        ))
        .await
            == 1
    })
    .await;
}
