//! PostgreSQL backups (README.md, "Backups"): a `pg_dump --format=custom` archive of the
//! platform's database in `BACKUP_DIR`, its size and SHA-256 recorded in `backup_logs`,
//! verified with `pg_restore --list` and, when a scratch database is configured, by a full
//! restore into it. One job (run, verification, cleanup) at a time across replicas: a
//! session-level PostgreSQL advisory lock held on one pooled connection for the whole job.
//! `pg_dump`/`pg_restore` run as child processes (tokio), never on an actix worker thread, and
//! get the database credentials through their environment, never their arguments.

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
};

use aws_lc_rs::digest;
use chrono::Utc;
use diesel::{QueryableByName, sql_types::Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::Command,
};
use zimmer_db::{
    models::admin::{BackupLog, NewBackupLog},
    pool::{DbConn, DbPool},
};

use crate::{
    config::BackupConfig,
    domain::backups::{PgTarget, archived_tables},
    queries,
};

/// The advisory lock key of backup jobs ("zimmerbk").
const LOCK_KEY: i64 = 0x7a69_6d6d_6572_626b;

/// The backup lock, held by the session of one pooled connection. Dropping it detaches that
/// connection from the pool and closes it, which ends the session and so releases the lock
/// even if the job panicked or was cancelled: a pooled connection never goes back holding it.
pub struct JobLock {
    conn: Option<DbConn>,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(DbConn::take(conn));
        }
    }
}

impl JobLock {
    /// Ends a job that finished: unlocks on the same session at once, so the next job finds the
    /// lock free (closing the connection frees it only once the server has seen the disconnect).
    /// The connection goes back to the pool unlocked; if the unlock fails it is closed instead.
    pub async fn release(mut self) {
        if let Some(mut conn) = self.conn.take() {
            let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                drop(DbConn::take(conn));
            }
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// The lock if no other job (on any replica) holds it.
pub async fn try_lock(pool: &DbPool) -> anyhow::Result<Option<JobLock>> {
    let mut conn = pool.get().await?;
    let got: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
        .get_result(&mut *conn)
        .await?;
    if got.locked {
        Ok(Some(JobLock { conn: Some(conn) }))
    } else {
        Ok(None)
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub backup_id: i64,
    pub ok: bool,
    pub message: String,
}

/// A successful verification.
#[derive(Debug, Clone)]
pub struct Verified {
    pub method: &'static str,
    /// Rows per table in the scratch database after the restore (restore only).
    pub row_counts: BTreeMap<String, i64>,
}

/// A verification step that failed, for a 422 `detail`.
#[derive(Debug, Clone)]
pub struct VerifyError(pub String);

fn file_name_for(db: &str) -> String {
    let safe: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "zimmer-{}-{safe}.dump",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// Starts a run under `lock`: inserts its `running` row and returns it. The caller hands both to
/// [`run`] (on a task of its own).
pub async fn start(
    pool: &DbPool,
    cfg: &BackupConfig,
    trigger: &str,
    actor_id: Option<i64>,
) -> anyhow::Result<BackupLog> {
    let mut conn = pool.get().await?;
    // The lock is ours: any `running` row is a run whose process died.
    queries::backups::fail_interrupted(&mut conn).await?;
    let name = file_name_for(&cfg.live.dbname);
    let row = queries::backups::insert(
        &mut conn,
        &NewBackupLog {
            database_name: &cfg.live.dbname,
            file_name: &name,
            file_path: &name,
            trigger,
            actor_id,
        },
    )
    .await?;
    Ok(row)
}

/// Makes the archive of run `row`, records the outcome, then verifies it. Holds `lock` to the
/// end.
pub async fn run(pool: DbPool, cfg: BackupConfig, row: BackupLog, lock: JobLock) -> RunOutcome {
    let outcome = run_inner(&pool, &cfg, &row).await;
    lock.release().await;
    outcome
}

pub async fn run_inner(pool: &DbPool, cfg: &BackupConfig, row: &BackupLog) -> RunOutcome {
    let fail = |message: String| RunOutcome {
        backup_id: row.id,
        ok: false,
        message,
    };
    let Some(dir) = &cfg.dir else {
        return fail("backups are off (BACKUP_DIR is not set)".to_owned());
    };
    let dumped = dump(cfg, dir, &row.file_path).await;
    let Ok(mut conn) = pool.get().await else {
        return fail("the database is unavailable".to_owned());
    };
    match dumped {
        Err(e) => {
            tracing::error!(backup_id = row.id, error = %e, "backup failed");
            let message = format!("Backup failed: {e}");
            if let Err(db) = queries::backups::finish_failed(&mut conn, row.id, &e).await {
                tracing::error!(backup_id = row.id, error = %db, "backup failure not recorded");
            }
            fail(message)
        }
        Ok((size, sha)) => {
            if let Err(e) = queries::backups::finish_success(&mut conn, row.id, size, &sha).await {
                tracing::error!(backup_id = row.id, error = %e, "backup not recorded");
                return fail("the backup was made but could not be recorded".to_owned());
            }
            drop(conn);
            let mut done = BackupLog {
                file_size: size,
                checksum_sha256: Some(sha),
                ..row.clone()
            };
            done.status = "success".to_owned();
            let verified = verify_and_record(pool, cfg, &done).await;
            let message = match verified {
                Ok(v) => format!(
                    "Backup {} made ({size} bytes) and verified ({})",
                    done.file_name, v.method
                ),
                Err(e) => format!(
                    "Backup {} made ({size} bytes); verification failed: {}",
                    done.file_name, e.0
                ),
            };
            tracing::info!(backup_id = row.id, size, "backup made");
            RunOutcome {
                backup_id: row.id,
                ok: true,
                message,
            }
        }
    }
}

/// Runs `pg_dump` into `dir/.name.partial` (0600, in a 0700 directory), hashing as it streams,
/// then fsyncs and renames it to `dir/name`. Returns the size and the hex SHA-256. A failure
/// removes the partial file.
async fn dump(cfg: &BackupConfig, dir: &Path, name: &str) -> Result<(i64, String), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("cannot create the backup directory: {e}"))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(|e| format!("cannot restrict the backup directory: {e}"))?;
    let partial = dir.join(format!(".{name}.partial"));
    let result = dump_to(cfg, &partial).await;
    let finished = match result {
        Ok(v) => {
            let target = dir.join(name);
            if tokio::fs::try_exists(&target).await.unwrap_or(true) {
                Err(format!("{name} exists already"))
            } else {
                match tokio::fs::rename(&partial, &target).await {
                    Ok(()) => {
                        // The rename is durable once the directory is synced.
                        if let Ok(d) = tokio::fs::File::open(dir).await {
                            let _ = d.sync_all().await;
                        }
                        Ok(v)
                    }
                    Err(e) => Err(format!("cannot rename the archive: {e}")),
                }
            }
        }
        Err(e) => Err(e),
    };
    if finished.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    finished
}

async fn dump_to(cfg: &BackupConfig, partial: &Path) -> Result<(i64, String), String> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .await
        .map_err(|e| format!("cannot create the archive file: {e}"))?;
    let mut cmd = Command::new(&cfg.pg_dump);
    cmd.args(["--format=custom", "--no-password"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cfg.live.apply(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cfg.pg_dump))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| "pg_dump has no output".to_owned())?;
    let stderr = child.stderr.take();
    let errors = tokio::spawn(read_tail(stderr));
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut size: i64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let copied: Result<(), String> = async {
        loop {
            let n = stdout
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading pg_dump's output: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            let chunk = buf.get(..n).unwrap_or_default();
            ctx.update(chunk);
            file.write_all(chunk)
                .await
                .map_err(|e| format!("writing the archive: {e}"))?;
            size += i64::try_from(n).unwrap_or(i64::MAX);
        }
    }
    .await;
    if let Err(e) = copied {
        let _ = child.kill().await;
        return Err(e);
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for pg_dump: {e}"))?;
    let stderr = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(format!("pg_dump exited with {status}: {}", stderr.trim()));
    }
    file.flush()
        .await
        .map_err(|e| format!("writing the archive: {e}"))?;
    file.sync_all()
        .await
        .map_err(|e| format!("syncing the archive: {e}"))?;
    if size == 0 {
        return Err("pg_dump wrote nothing".to_owned());
    }
    Ok((size, hex(ctx.finish().as_ref())))
}

/// The last 2 KiB of a child's stderr (its error message).
async fn read_tail(stderr: Option<tokio::process::ChildStderr>) -> String {
    let Some(mut s) = stderr else {
        return String::new();
    };
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all).await;
    let start = all.len().saturating_sub(2048);
    String::from_utf8_lossy(all.get(start..).unwrap_or_default()).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The archive of `row` inside `BACKUP_DIR`. `file_path` is ours, but a name with a path
/// separator or `..` is refused all the same.
fn archive_path(cfg: &BackupConfig, row: &BackupLog) -> Result<PathBuf, VerifyError> {
    let dir = cfg
        .dir
        .as_ref()
        .ok_or_else(|| VerifyError("backups are off (BACKUP_DIR is not set)".to_owned()))?;
    if row.file_path.is_empty()
        || row.file_path.contains('/')
        || row.file_path.contains('\\')
        || row.file_path.starts_with('.')
    {
        return Err(VerifyError(
            "the recorded file name is not valid".to_owned(),
        ));
    }
    Ok(dir.join(&row.file_path))
}

/// SHA-256 of a file, hex.
pub async fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        ctx.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(ctx.finish().as_ref()))
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

const TABLES_SQL: &str = "SELECT table_name::text AS name FROM information_schema.tables \
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1";

/// Verifies `row`'s archive: the file matches its SHA-256, `pg_restore --list` reads it and it
/// holds every table of our schema, and with a scratch database the archive restores there and
/// every table answers a count. Records the outcome (`verified` only on success).
pub async fn verify_and_record(
    pool: &DbPool,
    cfg: &BackupConfig,
    row: &BackupLog,
) -> Result<Verified, VerifyError> {
    let result = verify(pool, cfg, row).await;
    if let Ok(mut conn) = pool.get().await {
        let recorded = match &result {
            Ok(v) => queries::backups::mark_verified(&mut conn, row.id, v.method).await,
            Err(e) => {
                queries::backups::note_error(&mut conn, row.id, &format!("verification: {}", e.0))
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(backup_id = row.id, error = %e, "verification not recorded");
        }
    }
    result
}

async fn verify(
    pool: &DbPool,
    cfg: &BackupConfig,
    row: &BackupLog,
) -> Result<Verified, VerifyError> {
    let path = archive_path(cfg, row)?;
    let sha = file_sha256(&path)
        .await
        .map_err(|e| VerifyError(format!("file: cannot read {}: {e}", row.file_name)))?;
    if row.checksum_sha256.as_deref() != Some(sha.as_str()) {
        return Err(VerifyError(
            "checksum: the file does not match its recorded SHA-256".to_owned(),
        ));
    }
    let listing = pg_restore(cfg, &["--list"], &path, None)
        .await
        .map_err(|e| VerifyError(format!("pg_restore --list: {e}")))?;
    let archived = archived_tables(&listing);
    let expected: Vec<TableName> = {
        let mut conn = pool
            .get()
            .await
            .map_err(|_| VerifyError("the database is unavailable".to_owned()))?;
        diesel::sql_query(TABLES_SQL)
            .load(&mut *conn)
            .await
            .map_err(|_| VerifyError("cannot read the schema's tables".to_owned()))?
    };
    let missing: Vec<&str> = expected
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| !archived.iter().any(|a| a == t))
        .collect();
    if !missing.is_empty() {
        return Err(VerifyError(format!(
            "pg_restore --list: the archive lacks tables {}",
            missing.join(", ")
        )));
    }
    let Some(scratch) = &cfg.scratch else {
        return Ok(Verified {
            method: "list",
            row_counts: BTreeMap::new(),
        });
    };
    pg_restore(
        cfg,
        &["--clean", "--if-exists", "--no-owner", "--exit-on-error"],
        &path,
        Some(scratch),
    )
    .await
    .map_err(|e| VerifyError(format!("restore into the scratch database: {e}")))?;
    let mut conn = AsyncPgConnection::establish(scratch.url.expose())
        .await
        .map_err(|_| VerifyError("restore: cannot connect to the scratch database".to_owned()))?;
    let mut row_counts = BTreeMap::new();
    for table in &archived {
        let sql = format!(
            "SELECT count(*) AS n FROM public.\"{}\"",
            table.replace('"', "\"\"")
        );
        let c: Count = diesel::sql_query(sql)
            .get_result(&mut conn)
            .await
            .map_err(|e| VerifyError(format!("restore: counting {table}: {e}")))?;
        row_counts.insert(table.clone(), c.n);
    }
    Ok(Verified {
        method: "restore",
        row_counts,
    })
}

/// Runs `pg_restore` with `args` on `archive` (against `target` when given) and returns its
/// standard output, or its error message.
async fn pg_restore(
    cfg: &BackupConfig,
    args: &[&str],
    archive: &Path,
    target: Option<&PgTarget>,
) -> Result<String, String> {
    let mut cmd = Command::new(&cfg.pg_restore);
    cmd.args(args)
        .arg("--no-password")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(t) = target {
        t.apply(&mut cmd);
        cmd.arg(format!("--dbname={}", t.dbname));
    }
    cmd.arg(archive);
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot start {}: {e}", cfg.pg_restore))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let start = err.len().saturating_sub(1000);
        return Err(format!(
            "exited with {}: {}",
            out.status,
            err.get(start..).unwrap_or_default().trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Removes the files and rows of runs started more than `days` ago, except the newest
/// successful one. Returns the removed file names. Call it holding the lock.
pub async fn cleanup(pool: &DbPool, cfg: &BackupConfig, days: i64) -> anyhow::Result<Vec<String>> {
    let before = Utc::now() - chrono::Duration::days(days);
    let mut conn = pool.get().await?;
    let old = queries::backups::older_than(&mut conn, before).await?;
    let mut cleaned = Vec::new();
    for row in old {
        if let Ok(path) = archive_path(cfg, &row) {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Keep the row while its file is there: it still names the file.
                    tracing::error!(backup_id = row.id, error = %e, "backup file not removed");
                    continue;
                }
            }
        }
        queries::backups::delete(&mut conn, row.id).await?;
        cleaned.push(row.file_name);
    }
    Ok(cleaned)
}
