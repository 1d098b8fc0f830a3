//! `emu-eval tasks`: the registered tasks, their splits and metric; split sizes with `--data-root`.
use std::path::PathBuf;

use serde_json::{json, Value};
use tasks::registry::TASKS;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data root (`<root>/<task>/…`): also print the size of every split found there.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Print pretty JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// With --json: one line.
    #[arg(long)]
    pub compact: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for t in TASKS {
        let mut sizes = serde_json::Map::new();
        if let Some(root) = &args.data_root {
            let dir = t.dir(root);
            for s in t.splits {
                let v = match (t.loader)(&dir, s) {
                    Ok(samples) => Value::from(samples.len()),
                    Err(e) => Value::from(format!("unavailable ({e})")),
                };
                sizes.insert((*s).to_owned(), v);
            }
        }
        rows.push(json!({
            "task": t.id,
            "title": t.title,
            "media": format!("{:?}", t.media).to_lowercase(),
            "metric": t.metric.name(),
            "eval_split": t.eval_split,
            "splits": t.splits,
            "pool_split": t.pool_split,
            "result_file": t.result_file,
            "sizes": sizes,
        }));
    }
    if args.json {
        return super::metric::print_json(&Value::from(rows), args.compact);
    }
    println!("{:<13} {:<6} {:<31} {:<9} {:<6} {}", "task", "media", "metric", "eval", "pool", "splits");
    for (t, r) in TASKS.iter().zip(&rows) {
        let splits: Vec<String> = t
            .splits
            .iter()
            .map(|s| match r["sizes"].get(*s) {
                Some(Value::Number(n)) => format!("{s}={n}"),
                Some(_) => format!("{s}=-"),
                None => (*s).to_owned(),
            })
            .collect();
        println!(
            "{:<13} {:<6} {:<31} {:<9} {:<6} {}",
            t.id,
            r["media"].as_str().unwrap_or(""),
            t.metric.name(),
            t.eval_split,
            t.pool_split.unwrap_or("-"),
            splits.join(" ")
        );
    }
    Ok(())
}
