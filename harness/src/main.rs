//! `emu-eval` binary: parse the command line, call the library, print one-line errors.
use clap::Parser;

fn main() {
    // Errors are one line: library backtraces (candle captures one per error when
    // RUST_BACKTRACE is set) are neither captured nor printed. Panic backtraces are unaffected.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    std::panic::set_hook(Box::new(|info| {
        let msg = info.payload().downcast_ref::<&str>().map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("emu-eval: internal error (a bug, please report it): {}{at}", harness::log::one_line(&msg));
    }));
    let cli = harness::cli::Cli::parse();
    cli.limits.apply();
    if let Err(err) = harness::cli::dispatch(cli) {
        // One line, no backtrace: the chain joined with ": ".
        eprintln!("emu-eval: error: {}", harness::log::one_line(&format!("{err:#}")));
        std::process::exit(1);
    }
}
