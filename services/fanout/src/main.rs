use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_common::allocator::Allocator = chirp_common::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = fanout::Config::parse();
    let _telemetry = chirp_common::telemetry::init(&config.log, env!("CARGO_BIN_NAME"))?;
    chirp_common::metrics::install(&config.metrics)?;
    fanout::run(config, chirp_common::shutdown::signal()).await
}
