//! `emu-eval prompt`: print the exact prompt(s) of one sample (and with `--ids` their token ids).
//!
//! Samples come from the task loaders under the data root; support examples from the task's
//! training pool. No image features are computed here, so support examples are chosen with
//! retrieval's seeded fallback (reported as such, never as RICES).
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::ValueEnum;
use prompts::{build, Family, PromptOptions, PromptPlan, PromptSample, Task};
use serde_json::{json, Value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Task id (coco_caption, vqav2, okvqa, vizwiz, visdial, msvd_qa, msrvtt_qa, nextqa).
    #[arg(long)]
    pub task: String,
    /// Template family: pretrained Emu or instruction-tuned Emu-I.
    #[arg(long, value_enum)]
    pub model_family: FamilyArg,
    /// Few-shot support examples shown with their media (0, 2, 4, 8 in the paper).
    #[arg(long, default_value_t = 0)]
    pub shots: usize,
    /// Multimodal chain-of-thought (pretrained Emu): a caption stage fills {caption}.
    #[arg(long)]
    pub cot: bool,
    /// Two text-only support examples (the paper's `*` rows).
    #[arg(long)]
    pub text_examples: bool,
    /// Data root (default: $EMU_EVAL_DATA).
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Sample id as used in the task's predictions (default: the first evaluation sample).
    #[arg(long)]
    pub sample: Option<String>,
    /// Print JSON: {"prompts":[{"stage","text","images"}], ...}.
    #[arg(long)]
    pub json: bool,
    /// Also print token ids (needs --model).
    #[arg(long)]
    pub ids: bool,
    /// Model folder holding tokenizer.json.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// `<image>` slots per image block.
    #[arg(long, default_value_t = 32)]
    pub n_causal: usize,
    /// Seed of the support pool subset and of the fallback selection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum FamilyArg {
    #[value(name = "emu")]
    Emu,
    #[value(name = "emu-i")]
    EmuI,
}

impl From<FamilyArg> for Family {
    fn from(f: FamilyArg) -> Self {
        match f {
            FamilyArg::Emu => Family::Emu,
            FamilyArg::EmuI => Family::EmuI,
        }
    }
}

/// Size of the random training subset RICES searches (datasets.md 1).
const POOL_SUBSET: usize = 5000;

pub fn run(args: Args) -> anyhow::Result<()> {
    let task = Task::parse(&args.task).with_context(|| {
        let ids: Vec<&str> = Task::ALL.iter().map(|t| t.id()).collect();
        format!("--task: unknown task {:?} (one of {})", args.task, ids.join(", "))
    })?;
    let family = Family::from(args.model_family);
    let data_root = match (&args.data_root, std::env::var_os("EMU_EVAL_DATA")) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => bail!("--data-root: not given and $EMU_EVAL_DATA is not set"),
    };
    let tokenizer = match (args.ids, &args.model) {
        (false, _) => None,
        (true, None) => bail!("--ids: needs --model DIR (the folder holding tokenizer.json)"),
        (true, Some(dir)) => Some(load_tokenizer(dir, family)?),
    };

    let samples = loaders::load(task, &data_root)?;
    let query = match &args.sample {
        Some(id) => samples.queries.iter().find(|s| &s.id == id).with_context(|| format!("--sample: no sample {id:?} in {}", task.id()))?,
        None => samples.queries.first().with_context(|| format!("{}: no evaluation samples", task.id()))?,
    };
    let opts = PromptOptions { shots: args.shots, cot: args.cot, text_examples: args.text_examples, n_causal: args.n_causal, ..Default::default() };
    let wanted = if args.text_examples { prompts::TEXT_EXAMPLES } else { args.shots };
    let subset = retrieval::subsample_pool(samples.pool.len(), POOL_SUBSET, args.seed);
    let selection = retrieval::select(None, None, &query.id, subset.len(), wanted, args.seed)
        .map_err(|e| anyhow::anyhow!("support examples of {}: {e}", task.id()))?;
    let support: Vec<PromptSample> = selection.indices.iter().map(|&i| samples.pool[subset[i]].clone()).collect();
    let plan = build(task, family, query, &support, &opts).map_err(|e| anyhow::anyhow!("{}: sample {}: {e}", task.id(), query.id))?;

    let stages = stage_values(&plan, tokenizer.as_ref());
    let out = json!({
        "task": task.id(),
        "model_family": family.key(),
        "sample": query.id,
        "shots": args.shots,
        "cot": args.cot,
        "text_examples": args.text_examples,
        "example_separator": plan.example_separator,
        "support": {"method": selection.method.label(), "ids": plan.support_ids},
        "prompts": stages,
    });
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        write_text(&mut stdout, &out)?;
    }
    Ok(())
}

/// One JSON object per stage: name, kind, exact text, files feeding the image blocks (and for
/// video frames `[i, k]`: frame i of k sampled), and token ids when a tokenizer is given. A stage
/// that uses an earlier stage's output shows it as `{stage name}` and has no ids.
fn stage_values(plan: &PromptPlan, tokenizer: Option<&Tokenizer>) -> Vec<Value> {
    plan.stages
        .iter()
        .map(|st| {
            let text = st.text();
            let media = st.media();
            let mut v = json!({
                "stage": st.name,
                "kind": st.kind,
                "text": text,
                "images": media.iter().map(|m| m.path.clone()).collect::<Vec<_>>(),
                "frames": media.iter().map(|m| m.frame.map(|(i, k)| json!([i, k])).unwrap_or(Value::Null)).collect::<Vec<_>>(),
                "depends_on": st.depends_on(),
            });
            if let Some(tok) = tokenizer {
                v["ids"] = if st.depends_on().is_empty() { json!(tok.encode(&text)) } else { Value::Null };
            }
            v
        })
        .collect()
}

fn write_text(w: &mut dyn Write, out: &Value) -> anyhow::Result<()> {
    writeln!(
        w,
        "# task {} | family {} | sample {} | support {} {} | separator {}",
        out["task"].as_str().unwrap_or_default(),
        out["model_family"].as_str().unwrap_or_default(),
        out["sample"].as_str().unwrap_or_default(),
        out["support"]["method"].as_str().unwrap_or_default(),
        out["support"]["ids"],
        out["example_separator"],
    )?;
    for st in out["prompts"].as_array().into_iter().flatten() {
        writeln!(w, "== stage {} ({})", st["stage"].as_str().unwrap_or_default(), st["kind"].as_str().unwrap_or_default())?;
        let images: Vec<String> = st["images"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(st["frames"].as_array().into_iter().flatten())
            .map(|(p, f)| match f.as_array() {
                Some(f) => format!("{}#{}/{}", p.as_str().unwrap_or_default(), f[0], f[1]),
                None => p.as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        writeln!(w, "images: {}", images.join(" "))?;
        writeln!(w, "{}", st["text"].as_str().unwrap_or_default())?;
        match st.get("ids") {
            Some(Value::Array(ids)) => {
                let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                writeln!(w, "ids: {}", ids.join(","))?
            }
            Some(_) => writeln!(w, "ids: (uses an earlier stage's output)")?,
            None => {}
        }
    }
    Ok(())
}

type Tokenizer = crate::emu::tokenizer::EmuTokenizer;

/// The Emu tokenizer of `dir/tokenizer.json` with the family's special tokens (emu-model.md 1.7).
fn load_tokenizer(dir: &std::path::Path, family: Family) -> anyhow::Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    Tokenizer::from_file(&path, family == Family::EmuI).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Task loaders (`tasks::registry`) → prompt samples.
mod loaders {
    use std::collections::HashMap;
    use std::path::Path;

    use prompts::{MediaRef, PromptSample, Task, Turn};
    use tasks::datasets::{Content, Media, Sample};

    /// Evaluation samples and the training pool of a task.
    pub struct TaskSamples {
        pub queries: Vec<PromptSample>,
        pub pool: Vec<PromptSample>,
    }

    pub fn load(task: Task, data_root: &Path) -> anyhow::Result<TaskSamples> {
        let entry = tasks::registry::get(task.id()).ok_or_else(|| anyhow::anyhow!("task {} is not registered", task.id()))?;
        let dir = entry.dir(data_root);
        let split = entry.load(&dir, entry.eval_split)?;
        let pool = entry.load_pool(&dir)?;
        Ok(TaskSamples {
            queries: split.samples.iter().map(query).collect(),
            pool: pool.iter().map(support).collect(),
        })
    }

    fn media(m: &Media) -> MediaRef {
        match m {
            Media::Image { path, .. } => MediaRef::Image(path.display().to_string()),
            Media::Video { path, .. } => MediaRef::Video(path.display().to_string()),
        }
    }

    fn turns(h: &[tasks::datasets::Turn]) -> Vec<Turn> {
        h.iter().map(|t| Turn { question: t.question.clone(), answer: t.answer.clone() }).collect()
    }

    /// An evaluation sample: question and dialog history; no answer is shown.
    fn query(s: &Sample) -> PromptSample {
        let mut p = PromptSample { id: s.id.to_string(), media: vec![media(&s.media)], ..Default::default() };
        match &s.content {
            Content::Caption { .. } | Content::TextToImage { .. } => {}
            Content::Vqa { question, answerable, .. } => {
                p.question = Some(question.clone());
                p.answerable = answerable.map(|a| a != 0);
            }
            Content::Dialog { history, question, .. } => {
                p.question = Some(question.clone());
                p.history = turns(history);
            }
            Content::VideoQa { question, .. } => p.question = Some(question.clone()),
        }
        p
    }

    /// A training-pool sample as a support example, with the answer it shows:
    /// captioning: the first reference caption; VQA: the most frequent of the ground-truth answers
    /// (ties: the one listed first); VisDial pool entries are whole dialogs: the last round is the
    /// question/answer, the earlier rounds its history; video QA: the answer.
    fn support(s: &Sample) -> PromptSample {
        let mut p = query(s);
        match &s.content {
            Content::Caption { references } => p.answer = references.first().cloned(),
            Content::TextToImage { caption, .. } => p.answer = Some(caption.clone()),
            Content::Vqa { answers, .. } => p.answer = most_frequent(answers),
            Content::Dialog { history, question, options, gt_index, .. } => {
                if question.is_empty() {
                    if let Some((last, earlier)) = history.split_last() {
                        p.question = Some(last.question.clone());
                        p.answer = Some(last.answer.clone());
                        p.history = turns(earlier);
                    }
                } else {
                    p.answer = gt_index.and_then(|i| options.get(i).cloned());
                }
            }
            Content::VideoQa { answer, .. } => p.answer = Some(answer.clone()),
        }
        p
    }

    /// Most frequent string; ties go to the one that appears first.
    pub fn most_frequent(xs: &[String]) -> Option<String> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for x in xs {
            *counts.entry(x.as_str()).or_default() += 1;
        }
        let best = counts.values().copied().max()?;
        xs.iter().find(|x| counts[x.as_str()] == best).cloned()
    }
}
