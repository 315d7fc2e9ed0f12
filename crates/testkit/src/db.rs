use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    path::PathBuf,
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// The server all test databases live on; `TEST_DATABASE_ADMIN_URL` overrides it.
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(db: &str) -> String {
    let admin = admin_url();
    match admin.rfind('/') {
        Some(i) => format!("{}/{db}", &admin[..i]),
        None => format!("{admin}/{db}"),
    }
}

/// Any fixed number: test processes serialise template creation on it.
const TEMPLATE_LOCK: i64 = 0x7465_7374_6462;

/// A database of one test's own, cloned from the migrated template, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let template = ensure_template().await;
        let name = format!("zimmer_test_{}", Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url())
            .await
            .expect("connect to the PostgreSQL admin database (is PostgreSQL running?)");
        // Two clones of one template at the same instant can collide; retry briefly.
        let mut attempt = 0;
        loop {
            let created = diesel::sql_query(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
            ))
            .execute(&mut admin)
            .await;
            match created {
                Ok(_) => break,
                Err(e) if attempt < 20 => {
                    attempt += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => panic!("cannot create test database: {e}"),
            }
        }
        Self {
            url: url_for(&name),
            name,
        }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs in async code: do the blocking work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ = diesel::sql_query(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    ))
                    .execute(&mut admin)
                    .await;
                }
            });
        })
        .join();
    }
}

fn migrations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// The template's name carries a hash of the migrations, so a changed migration gets a new
/// template and a stale one is never used.
fn template_name() -> String {
    let mut files = Vec::new();
    let mut stack = vec![migrations_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("migrations dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut hasher);
        std::fs::read(&f).expect("migration file").hash(&mut hasher);
    }
    format!("zimmer_test_tpl_{:016x}", hasher.finish())
}

/// One statement of the template's set-up; a failure fails the test (`what` says which).
async fn run(admin: &mut AsyncPgConnection, sql: String, what: &str) {
    diesel::sql_query(sql).execute(admin).await.expect(what);
}

async fn ensure_template() -> String {
    let name = template_name();
    let mut admin = AsyncPgConnection::establish(&admin_url())
        .await
        .expect("connect to the PostgreSQL admin database (is PostgreSQL running?)");
    run(
        &mut admin,
        format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"),
        "template lock",
    )
    .await;
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let exists = diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}') AS exists"
    ))
    .get_result::<Exists>(&mut admin)
    .await
    .expect("template lookup")
    .exists;
    if !exists {
        // Built under another name and renamed when complete: a crash half-way leaves no
        // half-migrated template behind under the real name.
        let building = format!("{name}_building");
        run(
            &mut admin,
            format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
            "drop stale template",
        )
        .await;
        run(
            &mut admin,
            format!("CREATE DATABASE \"{building}\""),
            "create template",
        )
        .await;
        zimmer_db::migrate(&url_for(&building))
            .await
            .expect("migrate template");
        run(
            &mut admin,
            format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\""),
            "rename template",
        )
        .await;
    }
    run(
        &mut admin,
        format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"),
        "template unlock",
    )
    .await;
    name
}
