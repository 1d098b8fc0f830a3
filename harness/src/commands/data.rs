//! `emu-eval data check`: validate a data root for one task.
use std::path::PathBuf;

use serde_json::json;
use tasks::registry::{self, Task};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Load a split and the RICES pool, decode every evaluation image/video, list every problem.
    Check(CheckArgs),
}

/// Where a task's files are: `<data-root>/<task>` or an explicit task folder.
#[derive(clap::Args, Debug, Clone)]
pub struct Location {
    #[command(flatten)]
    pub task: crate::cli::flags::TaskFlag,
    #[command(flatten)]
    pub data: crate::cli::flags::DataFlags,
    /// The task folder itself (instead of `--data-root`), e.g. a `_broken/<case>` fixture.
    #[arg(long, conflicts_with = "data_root")]
    pub task_dir: Option<PathBuf>,
    /// Split (default: the task's locally scorable split).
    #[arg(long)]
    pub split: Option<String>,
}

impl Location {
    pub fn resolve(&self) -> anyhow::Result<(&'static Task, PathBuf)> {
        let task = self.task.get();
        let dir = match &self.task_dir {
            Some(d) => d.clone(),
            None => task.dir(&self.data.resolve()?),
        };
        Ok((task, dir))
    }
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub loc: Location,
    #[command(flatten)]
    pub format: crate::cli::flags::FormatFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Check(a) => check(a),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let (task, dir) = args.loc.resolve()?;
    let r = tasks::datasets::check::check(task, &dir, args.loc.split.as_deref());
    if args.format.json {
        let problems: Vec<_> = r
            .problems
            .iter()
            .map(|p| {
                let mut o = json!({ "file": p.file.display().to_string(), "message": p.message });
                if let Some(f) = &p.field {
                    o["field"] = json!(f);
                }
                o
            })
            .collect();
        let out = json!({
            "task": r.task, "split": r.split, "samples": r.samples, "media": r.media, "pool": r.pool,
            "problems": problems,
        });
        super::metric::print_json(&out, args.format.compact.compact)?;
    } else {
        let media = match task.media {
            registry::MediaKind::Image => "images",
            registry::MediaKind::Video => "videos",
        };
        println!("task: {}  split: {}  folder: {}", r.task, r.split, dir.display());
        println!("samples: {}", r.samples);
        println!("{media}: {}", r.media);
        println!("pool: {}", r.pool);
        println!("problems: {}", r.problems.len());
        for p in &r.problems {
            eprintln!("{p}");
        }
    }
    if !r.problems.is_empty() {
        let first = r.problems[0].to_string();
        let more = if r.problems.len() > 1 {
            format!(" (and {} more problems)", r.problems.len() - 1)
        } else {
            String::new()
        };
        anyhow::bail!("{first}{more}");
    }
    Ok(())
}
