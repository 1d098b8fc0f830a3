//! `emu-eval rank` (not implemented yet).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`rank` is not implemented yet")
}
