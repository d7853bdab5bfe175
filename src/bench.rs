pub async fn run(_database: Option<String>, _args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}
