//! `emu-eval metric …`: score data with one metric, JSON on stdout.
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};
use tasks::metrics::result::Detail;
use tasks::metrics::{caption, fid, porter, postprocess, ptb, visdial, vqa, wordnet, wups};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub metric: Metric,
    #[command(flatten)]
    pub format: crate::cli::flags::CompactFlag,
}

#[derive(Subcommand, Debug)]
pub enum Metric {
    /// BLEU-1..4, ROUGE-L and CIDEr-D with PTB tokenization (METEOR and SPICE are not computed).
    Caption {
        #[arg(long)]
        input: PathBuf,
        /// Also print each image's tokenized captions and scores (3.5 MB for 5,000 images).
        #[arg(long)]
        per_image: bool,
    },
    /// PTB-tokenize captions read from stdin, one per line.
    Tokenize,
    /// VQA accuracy in one of the reference variants.
    Vqa {
        #[arg(long, value_enum)]
        variant: VqaVariant,
        #[arg(long)]
        input: PathBuf,
    },
    /// OKVQA's Porter stemmer on words read from stdin, one per line.
    Stem,
    /// Emu's post-processing on a JSON array of raw outputs read from stdin.
    Postprocess {
        #[arg(long, value_enum)]
        kind: PostprocessKind,
    },
    /// WUPS@0.0 and WUPS@0.9 (WordNet 3.0).
    Wups {
        #[arg(long)]
        input: PathBuf,
        /// Aggregate by NExT-QA question type.
        #[arg(long)]
        nextqa: bool,
        /// WordNet 3.0 database folder (default: $EMU_EVAL_WORDNET or /usr/share/wordnet).
        #[arg(long)]
        wordnet: Option<PathBuf>,
    },
    /// VisDial R@1/5/10, mean rank, MRR, NDCG.
    Visdial {
        #[arg(long)]
        input: PathBuf,
    },
    /// Fréchet distance between two feature matrices (.npy) or pytorch-fid statistics (.npz).
    Fid {
        #[arg(long)]
        a: PathBuf,
        #[arg(long)]
        b: PathBuf,
    },
}

/// `--variant` / `--vqa-variant`: the command-line face of `tasks::metrics::vqa::Variant`.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum VqaVariant {
    Official,
    Emu,
    Okvqa,
    Vizwiz,
}

impl From<VqaVariant> for vqa::Variant {
    fn from(v: VqaVariant) -> Self {
        match v {
            VqaVariant::Official => vqa::Variant::Official,
            VqaVariant::Emu => vqa::Variant::Emu,
            VqaVariant::Okvqa => vqa::Variant::Okvqa,
            VqaVariant::Vizwiz => vqa::Variant::Vizwiz,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
#[value(rename_all = "snake_case")]
pub enum PostprocessKind {
    VqaShortAnswer,
    CocoCaption,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = match args.metric {
        Metric::Caption { input, per_image } => {
            let detail = if per_image { Detail::PerSample } else { Detail::Aggregate };
            // The steps are timed for `--log-level info` (BENCHMARKS.md's breakdown).
            let t0 = Instant::now();
            let text = tasks::input::read_text(&input)?;
            let t1 = Instant::now();
            let items = caption::parse_items(&input, &text)?;
            let t2 = Instant::now();
            let result = caption::score(&items, detail);
            let t3 = Instant::now();
            print_json(&result, args.format.compact)?;
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            crate::log::info(format_args!(
                "metric caption: read {:.1} ms, parse {:.1} ms, score {:.1} ms, print {:.1} ms ({} images, {} threads)",
                ms(t0, t1),
                ms(t1, t2),
                ms(t2, t3),
                ms(t3, Instant::now()),
                items.len(),
                rayon::current_num_threads()
            ));
            return Ok(());
        }
        Metric::Tokenize => {
            let lines = stdin_lines()?;
            return print_lines(&ptb::tokenize_captions(&lines));
        }
        Metric::Vqa { variant, input } => {
            return print_json(
                &vqa::score_file(&input, variant.into(), Detail::PerSample)?,
                args.format.compact,
            )
        }
        Metric::Stem => {
            let words = stdin_lines()?;
            let stems: Vec<String> = words.iter().map(|w| porter::stem(w)).collect();
            return print_lines(&stems);
        }
        Metric::Postprocess { kind } => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
            let raw: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "<stdin>: expected a JSON array of strings (line {} column {}): {e}",
                    e.line(),
                    e.column()
                )
            })?;
            let rule = match kind {
                PostprocessKind::VqaShortAnswer => postprocess::vqa_short_answer,
                PostprocessKind::CocoCaption => postprocess::coco_caption,
            };
            Value::from(raw.iter().map(|s| rule(s)).collect::<Vec<_>>())
        }
        Metric::Wups { input, nextqa, wordnet: dir } => {
            let wn = match dir {
                Some(d) => wordnet::WordNet::load(&d)?,
                None => wordnet::WordNet::load_default()?,
            };
            return print_json(
                &wups::score_file(&input, nextqa, &wn, Detail::PerSample)?,
                args.format.compact,
            );
        }
        Metric::Visdial { input } => {
            return print_json(
                &visdial::score_file(&input, Detail::Aggregate)?,
                args.format.compact,
            )
        }
        Metric::Fid { a, b } => json!({ "fid": fid::fid_files(&a, &b)? }),
    };
    print_json(&out, args.format.compact)
}

fn stdin_lines() -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    let mut lines = Vec::new();
    for (i, line) in stdin.lock().lines().enumerate() {
        lines.push(line.with_context(|| format!("<stdin>: line {}: not UTF-8", i + 1))?);
    }
    Ok(lines)
}

fn print_lines(lines: &[String]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    Ok(())
}

/// Prints a value as JSON, pretty unless `compact`. A NaN or infinite number anywhere in it is
/// an error naming its field (serde_json would print `null`), and nothing is printed.
pub fn print_json<T: Serialize + ?Sized>(v: &T, compact: bool) -> anyhow::Result<()> {
    tasks::metrics::finite::check(v).map_err(|e| anyhow::anyhow!("result: {e}"))?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if compact {
        serde_json::to_writer(&mut out, v)?;
    } else {
        serde_json::to_writer_pretty(&mut out, v)?;
    }
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
