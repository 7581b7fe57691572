use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = fanout::Config::parse();
    chirp_common::telemetry::init(&config.log);
    chirp_common::metrics::install(&config.metrics)?;
    fanout::run(config, chirp_common::shutdown::signal()).await
}
