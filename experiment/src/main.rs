use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_runtime::allocator::Allocator = chirp_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chirp_experiment::execute(chirp_experiment::Cli::parse()).await
}
