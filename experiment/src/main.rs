use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_common::allocator::Allocator = chirp_common::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chirp_experiment::execute(chirp_experiment::Cli::parse()).await
}
