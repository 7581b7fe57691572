//! `drop-keyspace`: removes a CQL keyspace a seed filled, for scripts that
//! seed into a keyspace of their own (`deploy/bench-scale.sh`) on machines
//! with no `cqlsh` (Cassandra's own shell needs Python and its driver).

use std::time::Duration;

use anyhow::{Context, ensure};
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Statement;

#[derive(Debug, Clone, clap::Args)]
pub struct DropKeyspaceArgs {
    /// The keyspace to drop, with every table in it.
    pub keyspace: String,
    /// The CQL nodes (host:port, comma-separated).
    #[arg(
        long,
        env = "CQL_NODES",
        default_value = "127.0.0.1:9042",
        value_delimiter = ','
    )]
    pub cql_nodes: Vec<String>,
}

/// Drops the keyspace if it exists. Schema changes wait for every node to
/// agree, which takes seconds.
pub async fn drop_keyspace(args: &DropKeyspaceArgs) -> anyhow::Result<()> {
    let valid = args
        .keyspace
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_');
    ensure!(
        valid && !args.keyspace.is_empty(),
        "a keyspace name is letters, digits and underscores"
    );
    let session = SessionBuilder::new()
        .known_nodes(&args.cql_nodes)
        .build()
        .await
        .with_context(|| format!("connect to {}", args.cql_nodes.join(",")))?;
    let mut drop = Statement::new(format!("DROP KEYSPACE IF EXISTS {}", args.keyspace));
    drop.set_request_timeout(Some(Duration::from_secs(120)));
    session
        .query_unpaged(drop, ())
        .await
        .with_context(|| format!("drop keyspace {}", args.keyspace))?;
    Ok(())
}
