//! `emu-eval inspect` (not implemented yet).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`inspect` is not implemented yet")
}
