//! `emu-eval` binary: parse the command line, call the library, print one-line errors.
use clap::error::ErrorKind;
use clap::Parser;

fn main() {
    let cli = match harness::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) => e.exit(),
        Err(e) => fail(&usage_line(&e.render().to_string())),
    };
    if let Err(err) = harness::cli::dispatch(cli) {
        // One line, no backtrace: the chain joined with ": ".
        fail(&format!("{err:#}"));
    }
}

/// clap's usage error on one line: its lines joined, the "For more information" hint dropped.
fn usage_line(rendered: &str) -> String {
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    lines.join(" ").trim_start_matches("error: ").to_owned()
}

fn fail(msg: &str) -> ! {
    eprintln!("emu-eval: error: {}", msg.replace('\n', " "));
    std::process::exit(1);
}
