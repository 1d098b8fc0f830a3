//! `emu-eval` binary: parse the command line, call the library, print one-line errors.
use clap::error::ErrorKind;
use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    models::alloc::retain_freed_memory();
    // Errors are one line: library backtraces (candle captures one per error when
    // RUST_BACKTRACE is set) are neither captured nor printed. Panic backtraces are unaffected.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at =
            info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "emu-eval: internal error (a bug, please report it): {}{at}",
            harness::log::one_line(&msg)
        );
    }));
    let argv: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(v) => v,
        Err(a) => fail(&format!("argument {a:?} is not UTF-8")),
    };
    let resolved = match harness::cli::config::resolve(argv) {
        Ok(r) => r,
        Err(e) => fail(&format!("{e:#}")),
    };
    if let Some(text) = resolved.print {
        print!("{text}");
        return;
    }
    let cli = match harness::cli::Cli::try_parse_from(resolved.argv) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => fail(&usage_line(&e.render().to_string())),
    };
    cli.limits.apply();
    if let Err(err) = harness::cli::dispatch(cli) {
        // One line, no backtrace: the chain joined with ": ". A stop on SIGTERM/SIGINT has its
        // own status (README "Scheduler-safe runs") so that a requeued job resumes.
        let code = if err.downcast_ref::<harness::signals::Interrupted>().is_some() {
            harness::signals::EXIT_INTERRUPTED
        } else {
            1
        };
        fail_with(&format!("{err:#}"), code);
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
    fail_with(msg, 1)
}

fn fail_with(msg: &str, code: i32) -> ! {
    eprintln!("emu-eval: error: {}", harness::log::one_line(msg));
    std::process::exit(code);
}
