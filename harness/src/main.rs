//! `emu-eval` binary: parse the command line, call the library, print one-line errors.
use clap::Parser;

fn main() {
    let cli = harness::cli::Cli::parse();
    if let Err(err) = harness::cli::dispatch(cli) {
        // One line, no backtrace: the chain joined with ": ".
        let msg = format!("{err:#}").replace('\n', " ");
        eprintln!("emu-eval: error: {msg}");
        std::process::exit(1);
    }
}
