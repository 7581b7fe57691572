use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_runtime::allocator::Allocator = chirp_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = timeline::Config::parse();
    let _telemetry = chirp_runtime::telemetry::init(&config.log, env!("CARGO_BIN_NAME"))?;
    chirp_runtime::metrics::install(&config.metrics)?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    timeline::run(config, listener, chirp_runtime::shutdown::signal()).await
}
