//! `emu-eval tasks_list` (not implemented yet).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`tasks_list` is not implemented yet")
}
