//! `emu-eval report RUN_DIR… [--out DIR]`: tables beside the paper's numbers, plots and an HTML
//! page from finished run folders (the `reports` crate does the work).
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folders written by `emu-eval run`.
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// Output folder (results.md, results.csv, results.json, plots/, index.html).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// Samples shown per run in index.html: the first N and the N worst-scored.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = reports::ReportOptions { samples: args.samples };
    let (model, files) = reports::report(&args.run_dirs, &args.out, &opts)?;
    println!("{} run(s) → {} file(s) in {}", model.runs.len(), files.len(), args.out.display());
    for n in &model.notes {
        println!("note: {n}");
    }
    Ok(())
}
