//! Storage benchmark: operations per second of the hot storage operations on each real
//! backend, each beside the backend's bare round trip measured in the same run, reported as a
//! ratio to it.
//!
//! Run with the test servers up (`cargo xtask services` prints the variables):
//! `cargo bench -p mcp-auth-tests --bench storage`. Criterion prints its own estimates; the
//! table at the end is the summary recorded in the backend crates' READMEs. A benchmark name
//! filter (`-- sqlite/`) limits both.
//!
//! Criterion measures wall time, which for durable writes is mostly waiting for the disk. So
//! the summary also gives the **CPU time** per operation: the time this process's threads (the
//! async runtime, sqlx's SQLite workers) spent on a CPU over about two seconds of the operation
//! (not counting the making of its records), from `/proc/self/task/*/schedstat`. For SQLite, whose work all happens in this process,
//! that is the figure the server's CPU per request adds for the store; for PostgreSQL and
//! Redis it leaves out the servers' own time.
//!
//! | benchmark | what one iteration does |
//! | --- | --- |
//! | `round trip` | the baseline: one Redis `GET`, or one `SELECT` by primary key on the store's pool |
//! | `write round trip` | the write baseline: one Redis `SET`, or one committed single-row `INSERT` (for SQL databases a commit waits for the disk, which dominates every write below) |
//! | `access-token lookup` | `get_access_token` of a live token |
//! | `code issue+take` | `insert_code` then `take_code` of a fresh code |
//! | `refresh rotation` | `rotate_refresh_token` of the current token of a grant, chained |
//! | `issue tokens` | `issue_tokens` of an access and a refresh token of a fresh grant (a code exchange's write) |
//! | `register client` | `insert_client` of a fresh client (a dynamic registration's write) |
//! | `unknown-token lookup` | `get_access_token` of a hash the store does not hold |
//! | `provider, unknown token, repeated, no negative cache` | `StoreProvider::load_access_token` of one made-up token presented again and again, with the unknown-token cache off: one storage read each time |
//! | `provider, unknown token, repeated` | the same with the provider's defaults (the unknown-token cache on): answered from memory after the first read |
//! | `provider, unknown token, fresh` | a new made-up token each time, defaults: a storage read plus the cost of remembering the miss |

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mcp_auth_core::secrets::{SecretHash, random_id, random_secret};
use mcp_auth_core::types::{
    AccessTokenSecret, GrantType, OAuthClientInformationFull, OAuthClientMetadata,
};
use mcp_auth_core::{
    ClientRecord, ManualClock, OAuthAuthorizationServerProvider, Storage, StoreProvider,
};
use mcp_auth_redis::RedisStore;
use mcp_auth_sqlx::{PostgresStore, SqliteStore};
use mcp_auth_tests::conformance::records::{NOW, access, code, refresh};
use mcp_auth_tests::services;
use tokio::runtime::Runtime;

type RoundTrip = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One benchmarked operation: runs it `n` times (on records made beforehand, which the clock
/// leaves out) and returns the time those runs took.
type Batch = Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Timed> + Send>> + Send + Sync>;

/// What a [`Batch`] took: wall time, and CPU time of every thread of this process.
struct Timed {
    wall: Duration,
    cpu: Duration,
}

/// Starts both clocks around the operations of a batch (after its records are made).
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        let cpu = process_cpu();
        Self {
            wall: Instant::now(),
            cpu,
        }
    }

    fn stop(self) -> Timed {
        let wall = self.wall.elapsed();
        Timed {
            wall,
            cpu: process_cpu().saturating_sub(self.cpu),
        }
    }
}

struct Backend {
    name: &'static str,
    store: Arc<dyn Storage>,
    round_trip: RoundTrip,
    write_round_trip: RoundTrip,
}

const OPERATIONS: [&str; 11] = [
    "round trip",
    "write round trip",
    "access-token lookup",
    "code issue+take",
    "refresh rotation",
    "issue tokens",
    "register client",
    "unknown-token lookup",
    "provider, unknown token, repeated, no negative cache",
    "provider, unknown token, repeated",
    "provider, unknown token, fresh",
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

fn bench_backend(c: &mut Criterion, rt: &Runtime, backend: &Backend) -> Vec<(&'static str, Batch)> {
    let mut group = c.benchmark_group(backend.name);
    group.throughput(Throughput::Elements(1));
    let batches = rt.block_on(batches(backend));
    for (name, batch) in &batches {
        let batch = Arc::clone(batch);
        group.bench_function(*name, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let batch = batch(iters);
                async move { batch.await.wall }
            })
        });
    }
    group.finish();
    batches
}

/// Every operation of [`OPERATIONS`] on `backend`, in that order.
async fn batches(backend: &Backend) -> Vec<(&'static str, Batch)> {
    let store = &backend.store;
    let mut batches = vec![
        (OPERATIONS[0], repeat(&backend.round_trip)),
        (OPERATIONS[1], repeat(&backend.write_round_trip)),
        (OPERATIONS[2], live_lookup(store).await),
        (OPERATIONS[3], code_issue_and_take(store)),
        (OPERATIONS[4], rotation(store).await),
        (OPERATIONS[5], issuance(store)),
        (OPERATIONS[6], registration(store)),
    ];
    batches.extend(unknown_tokens(store));
    batches
}

/// `round_trip`, `n` times.
fn repeat(round_trip: &RoundTrip) -> Batch {
    let round_trip = Arc::clone(round_trip);
    Arc::new(move |n| {
        let round_trip = Arc::clone(&round_trip);
        Box::pin(async move {
            let start = Stopwatch::start();
            for _ in 0..n {
                round_trip().await;
            }
            start.stop()
        })
    })
}

/// A batch over `items` made fresh for each call by `make`, each passed to `run`.
fn over<T, M, R, F>(store: &Arc<dyn Storage>, make: M, run: R) -> Batch
where
    T: Send + Sync + 'static,
    M: Fn() -> T + Send + Sync + 'static,
    R: Fn(Arc<dyn Storage>, Arc<T>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let store = Arc::clone(store);
    let (make, run) = (Arc::new(make), Arc::new(run));
    Arc::new(move |n| {
        let (store, make, run) = (Arc::clone(&store), Arc::clone(&make), Arc::clone(&run));
        Box::pin(async move {
            let items: Vec<_> = (0..n).map(|_| Arc::new(make())).collect();
            let start = Stopwatch::start();
            for item in items {
                run(Arc::clone(&store), item).await;
            }
            start.stop()
        })
    })
}

async fn live_lookup(store: &Arc<dyn Storage>) -> Batch {
    let (raw, record) = access("lookup-grant", NOW + 86_400);
    assert!(store.issue_tokens(&record, None).await.expect("issue"));
    let hash = SecretHash::of(&raw);
    over(
        store,
        move || hash,
        |store, hash| async move {
            let found = store.get_access_token(&hash, NOW).await.expect("lookup");
            assert!(found.is_some());
        },
    )
}

fn code_issue_and_take(store: &Arc<dyn Storage>) -> Batch {
    over(
        store,
        || code("bench", NOW + 600).1,
        |store, record| async move {
            store.insert_code(&record).await.expect("insert");
            let taken = store.take_code(&record.code_hash, NOW).await.expect("take");
            assert!(matches!(taken, mcp_auth_core::CodeTake::Taken(_)));
        },
    )
}

/// Rotations of one grant's current refresh token, chained from call to call.
async fn rotation(store: &Arc<dyn Storage>) -> Batch {
    let grant = random_id();
    let (_, a) = access(&grant, NOW + 3600);
    let (raw, r) = refresh(&grant, NOW + 86_400);
    assert!(store.issue_tokens(&a, Some(&r)).await.expect("issue"));
    let current = Arc::new(Mutex::new(SecretHash::of(&raw)));
    let store = Arc::clone(store);
    Arc::new(move |n| {
        let (store, current, grant) = (Arc::clone(&store), Arc::clone(&current), grant.clone());
        Box::pin(async move {
            let pairs: Vec<_> = (0..n)
                .map(|_| {
                    (
                        access(&grant, NOW + 3600).1,
                        refresh(&grant, NOW + 86_400).1,
                    )
                })
                .collect();
            let mut old = *current.lock().unwrap();
            let start = Stopwatch::start();
            for (a, r) in &pairs {
                let outcome = store
                    .rotate_refresh_token(&old, a, Some(r), NOW)
                    .await
                    .expect("rotate");
                assert!(matches!(outcome, mcp_auth_core::Rotation::Rotated));
                old = r.token_hash;
            }
            let elapsed = start.stop();
            *current.lock().unwrap() = old;
            elapsed
        })
    })
}

/// A code exchange's write: an access and a refresh token of a fresh grant.
fn issuance(store: &Arc<dyn Storage>) -> Batch {
    over(
        store,
        || {
            let grant = random_id();
            (
                access(&grant, NOW + 3600).1,
                refresh(&grant, NOW + 86_400).1,
            )
        },
        |store, pair| async move {
            let (a, r) = &*pair;
            assert!(store.issue_tokens(a, Some(r)).await.expect("issue"));
        },
    )
}

/// A dynamic registration's write: a public client with one redirect URI.
fn registration(store: &Arc<dyn Storage>) -> Batch {
    over(
        store,
        || {
            let mut metadata =
                OAuthClientMetadata::new(vec!["http://127.0.0.1:7777/cb".to_owned()]);
            metadata.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
            metadata.client_name = Some("bench client".to_owned());
            ClientRecord::new(OAuthClientInformationFull::new(random_id(), metadata))
        },
        |store, client| async move {
            store.insert_client(&client).await.expect("register");
        },
    )
}

/// A provider over `store` at `NOW`, with or without its unknown-token cache.
fn provider(
    store: &Arc<dyn Storage>,
    negative_cache: bool,
) -> Arc<StoreProvider<Arc<dyn Storage>>> {
    let builder = StoreProvider::builder(Arc::clone(store), "https://as.example")
        .clock(Arc::new(ManualClock::new(NOW)));
    let builder = if negative_cache {
        builder
    } else {
        builder.unknown_token_cache_ttl(0)
    };
    Arc::new(builder.build().expect("provider"))
}

/// Made-up bearer tokens presented to `provider`: `fresh` ones, or one token again and again.
fn made_up_tokens(provider: Arc<StoreProvider<Arc<dyn Storage>>>, fresh: bool) -> Batch {
    let repeated = AccessTokenSecret::new(random_secret());
    Arc::new(move |n| {
        let provider = Arc::clone(&provider);
        let tokens: Vec<_> = (0..n)
            .map(|_| {
                if fresh {
                    AccessTokenSecret::new(random_secret())
                } else {
                    repeated.clone()
                }
            })
            .collect();
        Box::pin(async move {
            let start = Stopwatch::start();
            for token in &tokens {
                let found = provider.load_access_token(token).await.expect("lookup");
                assert!(found.is_none());
            }
            start.stop()
        })
    })
}

/// Made-up bearer tokens: straight from the store, then through the provider with and without
/// its unknown-token cache.
fn unknown_tokens(store: &Arc<dyn Storage>) -> Vec<(&'static str, Batch)> {
    let direct = over(
        store,
        || SecretHash::of(&random_secret()),
        |store, hash| async move {
            let found = store.get_access_token(&hash, NOW).await.expect("lookup");
            assert!(found.is_none());
        },
    );
    vec![
        (OPERATIONS[7], direct),
        (OPERATIONS[8], made_up_tokens(provider(store, false), false)),
        (OPERATIONS[9], made_up_tokens(provider(store, true), false)),
        (OPERATIONS[10], made_up_tokens(provider(store, true), true)),
    ]
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

/// CPU time the summary gives each operation, at least: long enough that scheduling noise
/// averages out.
const CPU_BUDGET: Duration = Duration::from_secs(2);

/// CPU time this process has used so far, summed over its live threads (the async runtime's,
/// sqlx's SQLite workers): the first field of each `/proc/self/task/<tid>/schedstat`, in
/// nanoseconds. None of these threads ends during a run (pools keep their connections), so no
/// time is lost with an exiting thread.
fn process_cpu() -> Duration {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path().join("schedstat");
        // A thread may end between listing and reading; its time is then not counted.
        if let Ok(stat) = std::fs::read_to_string(path) {
            let on_cpu = stat.split_whitespace().next().expect("schedstat format");
            nanos += on_cpu.parse::<u64>().expect("nanoseconds");
        }
    }
    Duration::from_nanos(nanos)
}

/// CPU time per operation of `batch`, whose wall time per operation criterion estimated as
/// `wall`: run for about [`CPU_BUDGET`].
fn cpu_per_operation(rt: &Runtime, batch: &Batch, wall: Duration) -> Duration {
    let runs = (CPU_BUDGET.as_secs_f64() / wall.as_secs_f64().max(1e-7)).clamp(200.0, 2e6) as u64;
    rt.block_on(batch(10)); // warm: prepared statements, pooled connections
    rt.block_on(batch(runs)).cpu / u32::try_from(runs).expect("runs")
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
    let started = std::time::SystemTime::now();
    let batches: Vec<_> = backends
        .iter()
        .map(|backend| bench_backend(&mut c, &rt, backend))
        .collect();
    c.final_summary();

    println!("\n| backend | operation | ops/s | time | CPU | × round trip | × write round trip |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for (backend, batches) in backends.iter().zip(&batches) {
        let (Some(read), Some(write)) = (
            estimate(&out, backend.name, OPERATIONS[0]),
            estimate(&out, backend.name, OPERATIONS[1]),
        ) else {
            continue;
        };
        for (operation, batch) in batches {
            // Criterion keeps a benchmark's name, spaces and `+` included, as its directory;
            // a benchmark the filter skipped has no fresh estimate.
            let path = out
                .join(backend.name)
                .join(operation)
                .join("new")
                .join("estimates.json");
            let fresh = std::fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= started);
            let Some(time) = estimate(&out, backend.name, operation).filter(|_| fresh) else {
                continue;
            };
            let cpu = cpu_per_operation(&rt, batch, time);
            println!(
                "| {} | {operation} | {:.0} | {:.1} µs | {:.1} µs | {:.2} | {:.2} |",
                backend.name,
                1.0 / time.as_secs_f64(),
                time.as_secs_f64() * 1e6,
                cpu.as_secs_f64() * 1e6,
                time.as_secs_f64() / read.as_secs_f64(),
                time.as_secs_f64() / write.as_secs_f64(),
            );
        }
    }
}
