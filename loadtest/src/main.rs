use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_common::allocator::Allocator = chirp_common::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loadtest::execute(loadtest::Cli::parse()).await
}
