use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_runtime::allocator::Allocator = chirp_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loadtest::execute(loadtest::Cli::parse()).await
}
