//! What a package installs beside the binary, generated from the one clap definition so that it cannot
//! drift from the commands: shell completions and man pages.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

/// Prints the completion script of `shell` for `footfall` to stdout.
pub fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    // Rendered first: clap_complete panics on a write error, and a closed pipe (`| head`) is not a bug.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "footfall", &mut script);
    std::io::stdout().write_all(&script).context("writing the completion script")
}

/// Writes `footfall.1` and a `footfall-SUBCOMMAND.1` for every subcommand into `dir`.
pub fn write_manpages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir).with_context(|| format!("writing man pages into {}", dir.display()))
}
