//! `sweep-test-stores`: drops every Postgres database, CQL keyspace, Kafka
//! topic (with its dead-letter topic) and consumer group a test made, that
//! is every one named as [`chirp_test_support::unique_name`] names them
//! (`prefix_` and 16 hex digits). `deploy/test.sh` runs it before and after the workspace's tests.
//!
//! Tests leave their stores behind rather than drop them as they end: a test
//! that fails keeps its data for whoever looks into it, and Rust has no
//! asynchronous drop to run at a test's end anyway. Left alone they pile up
//! (a test run makes some 250 of each) and cost the backends at rest: with
//! some 500 keyspaces, Cassandra spent three quarters of a core doing
//! nothing and ran out of heap, and Kafka keeps every topic's partitions.
//! Run it only when no test is running: it cannot tell a finished test's
//! stores from a running one's.

use std::time::Duration;

use anyhow::Context;
use chirp_test_support::{CQL, KAFKA, POSTGRES_ADMIN_URL, is_unique_name};
use futures::{StreamExt as _, TryStreamExt as _};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Statement;

/// Drops run side by side: a schema change waits for every node to agree.
const AT_ONCE: usize = 8;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let databases = sweep_postgres().await.context("Postgres")?;
    let keyspaces = sweep_cql().await.context("the CQL store")?;
    let (topics, groups) = sweep_kafka().await.context("Kafka")?;
    println!(
        "dropped the tests' {databases} databases, {keyspaces} keyspaces, {topics} topics and {groups} consumer groups"
    );
    Ok(())
}

async fn sweep_postgres() -> anyhow::Result<usize> {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(POSTGRES_ADMIN_URL).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database")
        .fetch_all(&mut admin)
        .await?;
    let names: Vec<String> = names.into_iter().filter(|n| is_unique_name(n)).collect();
    for name in &names {
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&mut admin)
            .await
            .with_context(|| format!("drop database {name}"))?;
    }
    Ok(names.len())
}

async fn sweep_cql() -> anyhow::Result<usize> {
    let session = SessionBuilder::new().known_node(CQL).build().await?;
    let names: Vec<String> = session
        .query_iter("SELECT keyspace_name FROM system_schema.keyspaces", ())
        .await?
        .rows_stream::<(String,)>()?
        .map_ok(|(name,)| name)
        .try_collect()
        .await?;
    let names: Vec<String> = names.into_iter().filter(|n| is_unique_name(n)).collect();
    futures::stream::iter(&names)
        .map(|name| {
            let session = &session;
            async move {
                let mut drop = Statement::new(format!("DROP KEYSPACE IF EXISTS {name}"));
                drop.set_request_timeout(Some(Duration::from_secs(120)));
                session
                    .query_unpaged(drop, ())
                    .await
                    .with_context(|| format!("drop keyspace {name}"))
            }
        })
        .buffer_unordered(AT_ONCE)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(names.len())
}

async fn sweep_kafka() -> anyhow::Result<(usize, usize)> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", KAFKA);
    let timeout = Duration::from_secs(30);
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "sweep-test-stores")
        .create()?;
    let topics: Vec<String> = consumer
        .fetch_metadata(None, timeout)?
        .topics()
        .iter()
        .map(|topic| topic.name().to_owned())
        // The fan-out worker's dead letters go to the events topic's name and
        // this suffix (`fanout::dead_letter_topic`).
        .filter(|name| is_unique_name(name.trim_end_matches("-dead-letter")))
        .collect();
    let groups: Vec<String> = consumer
        .fetch_group_list(None, timeout)?
        .groups()
        .iter()
        .map(|group| group.name().to_owned())
        .filter(|name| is_unique_name(name))
        .collect();
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    for chunk in groups.chunks(100) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        admin.delete_groups(&chunk, &options).await?;
    }
    for chunk in topics.chunks(100) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        admin.delete_topics(&chunk, &options).await?;
    }
    Ok((topics.len(), groups.len()))
}
