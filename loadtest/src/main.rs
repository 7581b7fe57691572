use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loadtest::execute(loadtest::Cli::parse()).await
}
