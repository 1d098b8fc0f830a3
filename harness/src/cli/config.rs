//! `--config FILE` (TOML): flags of any command from a file, `key = value` per flag (`task =
//! ["vqav2", "okvqa"]`, `shots = 4`, `cot = true`; `_` or `-` in keys). Flags on the command line
//! override the file's. `--print-config` prints the resolved flags as TOML and exits. The
//! resolved arguments are recorded in `run.json` (`arguments`).
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

use super::Cli;

static ARGUMENTS: OnceLock<Vec<String>> = OnceLock::new();

/// The resolved command line of this process (after `--config`), for `run.json`.
pub fn arguments() -> Option<Vec<String>> {
    ARGUMENTS.get().cloned()
}

/// What [`resolve`] found.
pub struct Resolved {
    /// The command line clap parses.
    pub argv: Vec<String>,
    /// `--print-config`: the resolved flags as TOML, printed instead of running.
    pub print: Option<String>,
}

/// Takes `--config FILE` and `--print-config` out of `argv` and merges the file's flags in.
pub fn resolve(argv: Vec<String>) -> Result<Resolved> {
    let mut rest = Vec::with_capacity(argv.len());
    let (mut file, mut print) = (None, false);
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => file = Some(it.next().context("--config: a TOML file is needed")?),
            "--print-config" => print = true,
            _ => match a.strip_prefix("--config=") {
                Some(f) => file = Some(f.to_owned()),
                None => rest.push(a),
            },
        }
    }
    let cmd = Cli::command();
    let sub_at = rest.iter().position(|a| cmd.find_subcommand(a).is_some());
    let mut argv = rest;
    if let (Some(path), Some(at)) = (&file, sub_at) {
        let sub = cmd.find_subcommand(&argv[at]).context("subcommand")?;
        let tokens = from_file(path, sub, &argv[at + 1..])?;
        argv.splice(at + 1..at + 1, tokens);
    } else if file.is_some() {
        bail!("--config: give it after a command, e.g. `emu-eval run --config run.toml`");
    }
    let _ = ARGUMENTS.set(argv.iter().skip(1).cloned().collect());
    let print = match (print, sub_at) {
        (false, _) => None,
        (true, Some(at)) => {
            let sub = cmd.find_subcommand(&argv[at]).context("subcommand")?;
            Some(to_toml(sub, &argv[at + 1..])?)
        }
        (true, None) => bail!("--print-config: give it after a command"),
    };
    Ok(Resolved { argv, print })
}

fn given(cli: &[String], flag: &str) -> bool {
    cli.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

fn find_arg<'c>(sub: &'c clap::Command, long: &str) -> Option<&'c clap::Arg> {
    sub.get_arguments().find(|a| a.get_long() == Some(long))
}

/// The file's flags as command-line tokens, leaving out those the command line gives.
fn from_file(path: &str, sub: &clap::Command, cli: &[String]) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{path}: cannot read"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("{path}: not TOML: {}", e.message()))?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = find_arg(sub, &long).with_context(|| {
            format!("{path}: {key}: not a flag of `emu-eval {}`", sub.get_name())
        })?;
        let flag = format!("--{long}");
        if given(cli, &flag) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let scalar = |v: &toml::Value| -> Result<String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                _ => bail!("{path}: {key}: a string, number or boolean is needed"),
            }
        };
        match (value, takes_value) {
            (toml::Value::Boolean(true), false) => out.push(flag),
            (toml::Value::Boolean(false), false) => {}
            (_, false) => bail!("{path}: {key}: a switch takes true or false"),
            (toml::Value::Array(items), true) => {
                for v in items {
                    out.extend([flag.clone(), scalar(v)?]);
                }
            }
            (v, true) => out.extend([flag, scalar(v)?]),
        }
    }
    Ok(out)
}

/// The flags of a command line as TOML (repeated flags as arrays, switches as `true`).
fn to_toml(sub: &clap::Command, tokens: &[String]) -> Result<String> {
    let mut table = toml::Table::new();
    let mut it = tokens.iter();
    while let Some(t) = it.next() {
        let Some(body) = t.strip_prefix("--") else { continue };
        let (long, inline) = match body.split_once('=') {
            Some((l, v)) => (l, Some(v.to_owned())),
            None => (body, None),
        };
        let Some(arg) = find_arg(sub, long) else { continue };
        let key = long.replace('-', "_");
        if !arg.get_action().takes_values() {
            table.insert(key, toml::Value::Boolean(true));
            continue;
        }
        let Some(v) = inline.or_else(|| it.next().cloned()) else { continue };
        let v = toml::Value::String(v);
        let many = matches!(arg.get_action(), clap::ArgAction::Append);
        match table.get_mut(&key) {
            Some(toml::Value::Array(a)) => a.push(v),
            _ if many => {
                table.insert(key, toml::Value::Array(vec![v]));
            }
            _ => {
                table.insert(key, v);
            }
        }
    }
    toml::to_string(&table).context("--print-config")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_file_fills_flags_and_the_command_line_overrides_it() {
        let dir = std::env::temp_dir().join(format!("emu-eval-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("run.toml");
        std::fs::write(
            &f,
            "task = [\"vqav2\", \"okvqa\"]\nshots = 4\ncot = true\nbatch_size = 2\n",
        )
        .unwrap();
        let f = f.to_str().unwrap();
        let r = resolve(argv(&["emu-eval", "run", "--config", f, "--shots", "2"])).unwrap();
        assert_eq!(
            r.argv,
            // File keys in sorted order, then the command line.
            argv(&[
                "emu-eval",
                "run",
                "--batch-size",
                "2",
                "--cot",
                "--task",
                "vqav2",
                "--task",
                "okvqa",
                "--shots",
                "2"
            ])
        );
        let p = resolve(argv(&["emu-eval", "run", "--config", f, "--print-config"])).unwrap();
        let printed: toml::Table = p.print.unwrap().parse().unwrap();
        assert_eq!(printed["shots"].as_array().map(|a| a[0].as_str()), Some(Some("4")));
        assert_eq!(printed["task"].as_array().map(Vec::len), Some(2));
        assert_eq!(printed["cot"].as_bool(), Some(true));
        std::fs::write(dir.join("bad.toml"), "shot = 4\n").unwrap();
        let bad = dir.join("bad.toml");
        let e = resolve(argv(&["emu-eval", "run", "--config", bad.to_str().unwrap()]));
        let msg = format!("{:#}", e.err().unwrap());
        assert!(msg.contains("bad.toml: shot: not a flag of `emu-eval run`"), "{msg}");
        std::fs::write(&bad, "shots = [\n").unwrap();
        let e = resolve(argv(&["emu-eval", "run", "--config", bad.to_str().unwrap()]));
        assert!(format!("{:#}", e.err().unwrap()).contains("not TOML"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
