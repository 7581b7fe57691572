use clap::Parser;
use fanout::{Cli, Command};

#[global_allocator]
static ALLOCATOR: chirp_runtime::allocator::Allocator = chirp_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::ReplayDeadLetters(args)) => {
            let _telemetry = chirp_runtime::telemetry::init(&args.log, env!("CARGO_BIN_NAME"))?;
            let replayed =
                fanout::replay::replay_dead_letters(&args, |progress| eprintln!("{progress}"))
                    .await?;
            println!("{replayed}");
            Ok(())
        }
        None => {
            let config = cli.worker;
            let _telemetry = chirp_runtime::telemetry::init(&config.log, env!("CARGO_BIN_NAME"))?;
            chirp_runtime::metrics::install(&config.metrics)?;
            fanout::run(config, chirp_runtime::shutdown::signal()).await
        }
    }
}
