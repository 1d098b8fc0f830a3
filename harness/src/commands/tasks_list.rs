//! `emu-eval tasks`: the registered tasks, their splits, metric, official files and groups; split
//! sizes when a data root is given (`--data-root` or `$EMU_EVAL_DATA`; the built-in sample data is
//! not generated for it).
use std::path::PathBuf;

use serde_json::{json, Value};
use tasks::registry::TASKS;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: crate::cli::flags::DataFlags,
    #[command(flatten)]
    pub format: crate::cli::flags::FormatFlags,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root: Option<PathBuf> =
        args.data.data_root.clone().or_else(|| {
            std::env::var_os("EMU_EVAL_DATA").filter(|d| !d.is_empty()).map(PathBuf::from)
        });
    let mut rows = Vec::new();
    for t in TASKS {
        let mut sizes = serde_json::Map::new();
        if let Some(root) = &root {
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
            "files": t.data_files,
            "groups": tasks::registry::groups_of(t.id),
            "sizes": sizes,
        }));
    }
    if args.format.json {
        return super::metric::print_json(&Value::from(rows), args.format.compact.compact);
    }
    println!("{:<13} {:<6} {:<31} {:<9} {:<6} splits", "task", "media", "metric", "eval", "pool");
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
        println!("    groups: {}", tasks::registry::groups_of(t.id).join(", "));
        println!("    files:  {}", t.data_files.join(", "));
    }
    let groups: Vec<String> =
        tasks::registry::GROUPS.iter().map(|(g, ids)| format!("{g} = {}", ids.join(","))).collect();
    println!("\n--task also takes a group or `all`: {}", groups.join("; "));
    Ok(())
}
