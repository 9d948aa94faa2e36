//! Storage benchmark: operations per second of the hot storage operations on each real
//! backend, each beside the backend's bare round trip measured in the same run, reported as a
//! ratio to it.
//!
//! Run with the test servers up (`cargo xtask services` prints the variables):
//! `cargo bench -p mcp-auth-tests --bench storage`. Criterion prints its own estimates; the
//! table at the end is the summary recorded in the backend crates' READMEs.
//!
//! | benchmark | what one iteration does |
//! | --- | --- |
//! | `round trip` | the baseline: one Redis `GET`, or one `SELECT` by primary key on the store's pool |
//! | `write round trip` | the write baseline: one Redis `SET`, or one committed single-row `INSERT` (for SQL databases a commit waits for the disk, which dominates every write below) |
//! | `access-token lookup` | `get_access_token` of a live token |
//! | `code issue+take` | `insert_code` then `take_code` of a fresh code |
//! | `refresh rotation` | `rotate_refresh_token` of the current token of a grant, chained |

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mcp_auth_core::Storage;
use mcp_auth_core::secrets::SecretHash;
use mcp_auth_redis::RedisStore;
use mcp_auth_sqlx::{PostgresStore, SqliteStore};
use mcp_auth_tests::conformance::records::{NOW, access, code, refresh};
use mcp_auth_tests::services;
use tokio::runtime::Runtime;

type RoundTrip = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Backend {
    name: &'static str,
    store: Arc<dyn Storage>,
    round_trip: RoundTrip,
    write_round_trip: RoundTrip,
}

const OPERATIONS: [&str; 5] = [
    "round trip",
    "write round trip",
    "access-token lookup",
    "code issue+take",
    "refresh rotation",
];

async fn sqlite() -> Backend {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-sqlite");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let store = SqliteStore::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();
    let hash = seed_token(&store).await;
    let round_trip: RoundTrip = Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let row: Option<String> =
                sqlx::query_scalar("SELECT record FROM access_tokens WHERE token_hash = ?1")
                    .bind(&hash[..])
                    .fetch_optional(&pool)
                    .await
                    .expect("select");
            assert!(row.is_some());
        })
    });
    let write_round_trip = sql_insert(store.pool().clone(), "?1, ?2, ?3");
    Backend {
        name: "sqlite",
        store: Arc::new(store),
        round_trip,
        write_round_trip,
    }
}

async fn postgres() -> Backend {
    let url = services::fresh_postgres_database().await;
    let store = PostgresStore::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let pool = store.pool().clone();
    let hash = seed_token(&store).await;
    let round_trip: RoundTrip = Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let row: Option<String> =
                sqlx::query_scalar("SELECT record FROM access_tokens WHERE token_hash = $1")
                    .bind(&hash[..])
                    .fetch_optional(&pool)
                    .await
                    .expect("select");
            assert!(row.is_some());
        })
    });
    let write_round_trip = sql_insert(store.pool().clone(), "$1, $2, $3");
    Backend {
        name: "postgres",
        store: Arc::new(store),
        round_trip,
        write_round_trip,
    }
}

async fn redis() -> Backend {
    let prefix = services::unique_redis_prefix();
    let store = RedisStore::builder(services::redis_url())
        .key_prefix(&prefix)
        .connect()
        .await
        .expect("connect");
    // The baseline reads a value of an access token's size over a connection of its own kind.
    let client = redis::Client::open(services::redis_url()).expect("redis url");
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connect");
    let (_, record) = access("baseline-grant", NOW + 86_400);
    let key = format!("{prefix}baseline");
    let value = serde_json::to_string(&record).expect("json");
    redis::cmd("SET")
        .arg(&key)
        .arg(&value)
        .query_async::<()>(&mut conn.clone())
        .await
        .expect("set");
    let write_round_trip: RoundTrip = {
        let conn = conn.clone();
        let key = key.clone();
        Arc::new(move || {
            let mut conn = conn.clone();
            let key = key.clone();
            let value = value.clone();
            Box::pin(async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .query_async::<()>(&mut conn)
                    .await
                    .expect("set");
            })
        })
    };
    let round_trip: RoundTrip = Arc::new(move || {
        let mut conn = conn.clone();
        let key = key.clone();
        Box::pin(async move {
            let value: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("get");
            assert!(value.is_some());
        })
    });
    Backend {
        name: "redis",
        store: Arc::new(store),
        round_trip,
        write_round_trip,
    }
}

/// One committed single-row insert into the assertion-id table (a fresh key each time) through
/// `pool`, whose placeholders are `params`.
fn sql_insert<DB>(pool: sqlx::Pool<DB>, params: &'static str) -> RoundTrip
where
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let sql: &'static str = Box::leak(
        format!("INSERT INTO assertion_ids (issuer, jti, expires_at) VALUES ({params})")
            .into_boxed_str(),
    );
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(sql)
                .bind("bench".to_owned())
                .bind(mcp_auth_core::secrets::random_id())
                .bind(NOW + 60)
                .execute(&pool)
                .await
                .expect("insert");
        })
    })
}

/// Stores one live access token and returns its hash.
async fn seed_token(store: &dyn Storage) -> [u8; 32] {
    let (_, record) = access("seed-grant", NOW + 86_400);
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    *record.token_hash.as_bytes()
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, backend: &Backend) {
    let mut group = c.benchmark_group(backend.name);
    group.throughput(Throughput::Elements(1));

    for (name, round_trip) in [
        (OPERATIONS[0], &backend.round_trip),
        (OPERATIONS[1], &backend.write_round_trip),
    ] {
        let round_trip = Arc::clone(round_trip);
        group.bench_function(name, |b| {
            b.to_async(rt).iter(|| round_trip());
        });
    }

    let store = Arc::clone(&backend.store);
    let lookup = rt.block_on(async {
        let (raw, record) = access("lookup-grant", NOW + 86_400);
        assert!(store.issue_tokens(&record, None).await.expect("issue"));
        SecretHash::of(&raw)
    });
    group.bench_function(OPERATIONS[2], |b| {
        b.to_async(rt).iter(|| {
            let store = Arc::clone(&store);
            async move {
                let found = store.get_access_token(&lookup, NOW).await.expect("lookup");
                assert!(found.is_some());
            }
        });
    });

    let store = Arc::clone(&backend.store);
    group.bench_function(OPERATIONS[3], |b| {
        b.to_async(rt).iter_custom(|iters| {
            let store = Arc::clone(&store);
            async move {
                // Records are made before the clock starts: only storage is measured.
                let codes: Vec<_> = (0..iters).map(|_| code("bench", NOW + 600).1).collect();
                let start = Instant::now();
                for record in &codes {
                    store.insert_code(record).await.expect("insert");
                    let taken = store.take_code(&record.code_hash, NOW).await.expect("take");
                    assert!(matches!(taken, mcp_auth_core::CodeTake::Taken(_)));
                }
                start.elapsed()
            }
        });
    });

    let store = Arc::clone(&backend.store);
    let grant = mcp_auth_core::secrets::random_id();
    let current = rt.block_on(async {
        let (_, a) = access(&grant, NOW + 3600);
        let (raw, r) = refresh(&grant, NOW + 86_400);
        assert!(store.issue_tokens(&a, Some(&r)).await.expect("issue"));
        Arc::new(Mutex::new(SecretHash::of(&raw)))
    });
    group.bench_function(OPERATIONS[4], |b| {
        b.to_async(rt).iter_custom(|iters| {
            let store = Arc::clone(&store);
            let current = Arc::clone(&current);
            let grant = grant.clone();
            async move {
                let pairs: Vec<_> = (0..iters)
                    .map(|_| {
                        (
                            access(&grant, NOW + 3600).1,
                            refresh(&grant, NOW + 86_400).1,
                        )
                    })
                    .collect();
                let mut old = *current.lock().unwrap();
                let start = Instant::now();
                for (a, r) in &pairs {
                    let outcome = store
                        .rotate_refresh_token(&old, a, Some(r), NOW)
                        .await
                        .expect("rotate");
                    assert!(matches!(outcome, mcp_auth_core::Rotation::Rotated));
                    old = r.token_hash;
                }
                let elapsed = start.elapsed();
                *current.lock().unwrap() = old;
                elapsed
            }
        });
    });
    group.finish();
}

/// Criterion's estimate of the time per iteration of `group/name`, from its estimates file:
/// the slope of the linear regression where it sampled linearly (the figure it prints), else
/// the mean.
fn estimate(out: &Path, group: &str, name: &str) -> Option<Duration> {
    let path = out
        .join(group)
        .join(name)
        .join("new")
        .join("estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let nanos = json["slope"]["point_estimate"]
        .as_f64()
        .or_else(|| json["mean"]["point_estimate"].as_f64())?;
    Some(Duration::from_secs_f64(nanos / 1e9))
}

fn main() {
    let rt = Runtime::new().expect("tokio runtime");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion-storage");
    let mut c = Criterion::default()
        .output_directory(&out)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(50)
        .configure_from_args();
    let backends = rt.block_on(async { vec![sqlite().await, postgres().await, redis().await] });
    for backend in &backends {
        bench_backend(&mut c, &rt, backend);
    }
    c.final_summary();

    println!("\n| backend | operation | ops/s | time | × round trip | × write round trip |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for backend in &backends {
        let (Some(read), Some(write)) = (
            estimate(&out, backend.name, OPERATIONS[0]),
            estimate(&out, backend.name, OPERATIONS[1]),
        ) else {
            continue;
        };
        for operation in OPERATIONS {
            // Criterion keeps a benchmark's name, spaces and `+` included, as its directory.
            let Some(time) = estimate(&out, backend.name, operation) else {
                continue;
            };
            println!(
                "| {} | {operation} | {:.0} | {:.1} µs | {:.2} | {:.2} |",
                backend.name,
                1.0 / time.as_secs_f64(),
                time.as_secs_f64() * 1e6,
                time.as_secs_f64() / read.as_secs_f64(),
                time.as_secs_f64() / write.as_secs_f64(),
            );
        }
    }
}
