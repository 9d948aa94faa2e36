//! The servers that `cargo xtask test` starts are reachable, isolate tests from each other, and
//! come back on the same port after an outage.

use mcp_auth_tests::services;
use sqlx::{Connection, PgConnection};

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let url = services::redis_url();
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|err| panic!("invalid Redis URL {url}: {err}"));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("cannot connect to Redis at {url}: {err}"))
}

async fn ping(connection: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("PING")
        .query_async(connection)
        .await
        .unwrap_or_else(|err| panic!("PING failed: {err}"))
}

#[tokio::test]
async fn fresh_postgres_database_is_empty_and_writable() {
    let url = services::fresh_postgres_database().await;
    let mut connection = PgConnection::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(tables, 0);
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn fresh_postgres_databases_are_distinct() {
    let first = services::fresh_postgres_database().await;
    let second = services::fresh_postgres_database().await;
    assert_ne!(first, second);
}

#[tokio::test]
async fn redis_answers_ping() {
    let mut connection = redis_connection().await;
    assert_eq!(ping(&mut connection).await, "PONG");
}

#[test]
fn redis_prefixes_are_unique() {
    assert_ne!(
        services::unique_redis_prefix(),
        services::unique_redis_prefix()
    );
}

#[tokio::test]
async fn postgres_outage_ends_with_the_server_back_on_the_same_port_with_its_data() {
    let url = services::fresh_postgres_database().await;
    let mut connection = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        .execute(&mut connection)
        .await
        .unwrap();

    let outage = services::postgres_outage();
    assert!(PgConnection::connect(&url).await.is_err());
    assert!(connection.ping().await.is_err());
    outage.end();

    let mut connection = PgConnection::connect(&url).await.unwrap();
    let kept: i32 = sqlx::query_scalar("SELECT x FROM kept")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(kept, 7);
}

#[tokio::test]
async fn redis_outage_ends_with_an_empty_server_back_on_the_same_port() {
    let mut connection = redis_connection().await;
    let key = format!("{}kept", services::unique_redis_prefix());
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .query_async(&mut connection)
        .await
        .unwrap();

    let outage = services::redis_outage();
    let down: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut connection).await;
    assert!(down.is_err());
    outage.end();

    let mut connection = redis_connection().await;
    assert_eq!(ping(&mut connection).await, "PONG");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(value, None, "Redis runs without persistence");
}
