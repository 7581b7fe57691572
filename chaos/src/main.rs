use clap::Parser;

#[global_allocator]
static ALLOCATOR: chirp_runtime::allocator::Allocator = chirp_runtime::allocator::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chirp_chaos::execute(chirp_chaos::Cli::parse()).await
}
