//! Two measurements `bench/load/run.sh` makes in the same run as its scenarios, so every
//! figure there is a share of what this machine can do at that moment (docs: README,
//! "Performance"):
//!
//! - `zimmer-bench ceiling <port> [workers]`: an actix-web server answering every path with
//!   a fixed JSON body, put behind the same rendered gateway config as the services: the
//!   most requests per second anything behind that nginx can answer here.
//! - `zimmer-bench argon2 <seconds> [threads]`: hashes per second of argon2id with auth's
//!   production parameters and code (`zimmer_auth::domain::password::hash_with`), on as many
//!   threads as auth's hashing pool has (`run.sh` passes `PASSWORD_HASH_THREADS`; by default
//!   auth's own default, one fewer than the cores), at the pool's priority
//!   (`PASSWORD_HASH_NICE`). Prints the rate alone on stdout.
//! - `zimmer-bench hash-threads`: auth's default size of that pool on this machine, so that
//!   `run.sh` reads auth's rule instead of restating it.

use std::{
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, http::header::ContentType, web};
use zimmer_auth::{
    domain::password::{Block, hash_with},
    workers::hashing::lower_this_thread_priority,
};

/// About the size of a `/api/me` answer.
const BODY: &str = r#"{"id":1,"name":"Ceiling","email":"ceiling@example.com","phone_number":null,"role":"customer","is_active":true,"email_verified":true,"twofa_enabled":false,"created_at":"2026-01-01T00:00:00Z"}"#;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> anyhow::Result<T> {
    match args.get(i) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("argument {i} ({v}) is not a number")),
    }
}

fn ceiling(port: u16, workers: usize) -> anyhow::Result<()> {
    let system = actix_web::rt::System::new();
    system.block_on(async move {
        HttpServer::new(|| {
            App::new().default_service(web::to(|| async {
                HttpResponse::Ok()
                    .content_type(ContentType::json())
                    .body(BODY)
            }))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })?;
    Ok(())
}

fn argon2_rate(seconds: f64, threads: usize) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    // Every thread hashes once first (its 19 MiB block allocated and touched), then all start
    // the clock together: the rate is of steady hashing, as in auth's warm pool.
    let ready = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (stop, ready) = (stop.clone(), ready.clone());
        handles.push(std::thread::spawn(move || -> anyhow::Result<f64> {
            // At the hashing pool's priority (PASSWORD_HASH_NICE), as auth's threads run.
            lower_this_thread_priority();
            let mut blocks: Vec<Block> = Vec::new();
            let warm = hash_with(b"correct horse battery staple", &mut blocks)
                .map_err(|e| anyhow::anyhow!("{e:?}"));
            ready.wait();
            warm?;
            let started = Instant::now();
            let (mut done, mut last) = (0u32, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                hash_with(b"correct horse battery staple", &mut blocks)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                done += 1;
                last = started.elapsed();
            }
            // Hashes finished over the time up to the last one finished: the hash cut off by
            // the stop neither counts nor dilutes the rate.
            Ok(if done == 0 {
                0.0
            } else {
                f64::from(done) / last.as_secs_f64()
            })
        }));
    }
    ready.wait();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut rate = 0.0;
    for h in handles {
        rate += h
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    println!("{rate:.1}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("ceiling") => ceiling(arg(&args, 2, 18990)?, arg(&args, 3, 2)?),
        Some("argon2") => argon2_rate(
            arg(&args, 2, 5.0)?,
            arg(&args, 3, zimmer_auth::workers::hashing::default_threads())?,
        ),
        Some("hash-threads") => {
            println!("{}", zimmer_auth::workers::hashing::default_threads());
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: zimmer-bench ceiling <port> [workers] | argon2 <seconds> [threads] | hash-threads"
        ),
    }
}
