//! Assembling a prompt plan: system message, support examples, query, and the stages a runner
//! executes in order (chain-of-thought captions, VizWiz answerability, the answer).
use std::collections::HashMap;

use serde::Serialize;

use crate::template::{fill, merge_text, templates, FamilyTemplates, TaskTemplate};
use crate::types::{
    Family, MediaRef, MediaSlot, Part, PromptOptions, PromptSample, Task, TaskKind, TEXT_EXAMPLES,
};
use crate::BuildError;

/// Name of the query's chain-of-thought caption stage.
pub const COT_CAPTION: &str = "cot.caption";
/// Name of the VizWiz answerability stage.
pub const ANSWERABILITY: &str = "answerability";
/// Name of the final stage (the caption for captioning, the answer otherwise).
pub const ANSWER: &str = "answer";

/// Name of the chain-of-thought caption stage of support example `i`.
pub fn cot_support_caption(i: usize) -> String {
    format!("cot.caption.support.{i}")
}

/// One image's block in a prompt: `[IMG]` + n_causal × `<image>` + `[/IMG]` (the one definition).
pub fn image_block(n_causal: usize) -> String {
    let c = &templates().constants;
    let mut s = String::with_capacity(16 + 7 * n_causal);
    s.push_str(&c.image_begin);
    for _ in 0..n_causal {
        s.push_str(&c.image_slot);
    }
    s.push_str(&c.image_end);
    s
}

/// What a stage's output is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Chain-of-thought caption: post-process with the caption rule, fills `{caption}` later.
    Caption,
    /// VizWiz gate: generation constrained to `yes.`/`no.` (emu-model.md 3.5).
    Answerability,
    /// The task's answer (or caption for captioning).
    Answer,
}

/// One model input of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
    pub parts: Vec<Part>,
    /// `<image>` slots per block.
    pub n_causal: usize,
}

/// Everything a runner needs to prompt the model for one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPlan {
    pub task: Task,
    pub family: Family,
    /// Stages in execution order; the last is the answer.
    pub stages: Vec<Stage>,
    /// Text placed after every support example (a template field, reported as is).
    pub example_separator: String,
    /// Ids of the support examples used, in prompt order.
    pub support_ids: Vec<String>,
    /// Whether the support examples are text only (the paper's `*` rows).
    pub text_examples: bool,
}

impl Stage {
    /// `[IMG]` + n_causal × `<image>` + `[/IMG]`.
    pub fn image_block(&self) -> String {
        image_block(self.n_causal)
    }

    /// The exact model input, each earlier stage's output shown as `{<stage name>}` (the query's
    /// generated caption as `{cot.caption}`).
    pub fn text(&self) -> String {
        self.render_with(&mut |n| format!("{{{n}}}"))
    }

    /// The exact model input with earlier stages' (already post-processed) outputs filled in.
    pub fn render(&self, outputs: &HashMap<String, String>) -> Result<String, BuildError> {
        let missing = self.depends_on().into_iter().find(|n| !outputs.contains_key(*n));
        if let Some(n) = missing {
            return Err(BuildError::MissingStageOutput(n.to_owned()));
        }
        Ok(self.render_with(&mut |n| outputs.get(n).cloned().unwrap_or_default()))
    }

    fn render_with(&self, output: &mut dyn FnMut(&str) -> String) -> String {
        let block = self.image_block();
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Media(_) => s.push_str(&block),
                Part::StageOutput(n) => s.push_str(&output(n)),
            }
        }
        s
    }

    /// Files feeding the image blocks, in order.
    pub fn media(&self) -> Vec<&MediaSlot> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Media(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Names of the earlier stages whose outputs this stage uses.
    pub fn depends_on(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::StageOutput(n) => Some(n.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl PromptPlan {
    pub fn answer_stage(&self) -> &Stage {
        self.stages.last().expect("a plan always has an answer stage")
    }
}

/// Where an item's `{caption}` comes from.
enum CaptionSource<'a> {
    None,
    Known(&'a str),
    Stage(String),
}

/// Builds the prompt plan for `query` with the given support examples (already retrieved and in
/// prompt order; the first `shots`, or the first two with `text_examples`, are used).
pub fn build(
    task: Task,
    family: Family,
    query: &PromptSample,
    support: &[PromptSample],
    opts: &PromptOptions,
) -> Result<PromptPlan, BuildError> {
    let kind = task.kind();
    if opts.text_examples && opts.shots > 0 {
        return Err(BuildError::Conflict(
            "text-only examples replace few-shot examples; use one of them".into(),
        ));
    }
    if opts.cot && family == Family::EmuI {
        return Err(BuildError::Conflict("chain-of-thought is the pretrained model's prompting (family emu); Emu-I templates have no {caption}".into()));
    }
    if opts.cot && !task.supports_cot() {
        return Err(BuildError::Conflict(
            "chain-of-thought applies to question answering, not to captioning".into(),
        ));
    }
    if opts.n_causal == 0 || opts.query_frames == 0 || opts.support_frames == 0 {
        return Err(BuildError::Conflict("n_causal and frame counts must be positive".into()));
    }
    let wanted = if opts.text_examples { TEXT_EXAMPLES } else { opts.shots };
    if support.len() < wanted {
        return Err(BuildError::NotEnoughSupport { wanted, got: support.len() });
    }
    let examples = &support[..wanted];
    let with_media = !opts.text_examples;

    let fam = templates().family(family)?;
    let b = Builder { fam, task, opts };
    let mut stages = Vec::new();

    // Chain-of-thought: a caption for every image or video shown (support captions given with the
    // sample are used as they are).
    let mut support_captions = Vec::with_capacity(examples.len());
    for (i, ex) in examples.iter().enumerate() {
        let src = match (&ex.caption, opts.cot, with_media) {
            (_, false, _) => CaptionSource::None,
            (Some(c), true, _) => CaptionSource::Known(c),
            (None, true, true) => {
                let name = cot_support_caption(i);
                stages.push(b.caption_stage(&name, ex, opts.support_frames)?);
                CaptionSource::Stage(name)
            }
            (None, true, false) => CaptionSource::None,
        };
        support_captions.push(src);
    }
    let query_caption = if opts.cot {
        stages.push(b.caption_stage(COT_CAPTION, query, opts.query_frames)?);
        CaptionSource::Stage(COT_CAPTION.to_owned())
    } else {
        CaptionSource::None
    };

    if task.gated() {
        let t = fam.task("vizwiz_answerability")?;
        let label = |s: &PromptSample| answerability_label(task, s);
        let parts =
            b.prompt(t, examples, &support_captions, with_media, query, &query_caption, &label)?;
        stages.push(b.stage(ANSWERABILITY, StageKind::Answerability, parts));
    }
    let t = fam.task(kind.template_key())?;
    let answer_of = |s: &PromptSample| support_answer(kind, s);
    let parts =
        b.prompt(t, examples, &support_captions, with_media, query, &query_caption, &answer_of)?;
    stages.push(b.stage(ANSWER, StageKind::Answer, parts));

    Ok(PromptPlan {
        task,
        family,
        stages,
        example_separator: fam.example_separator.clone(),
        support_ids: examples.iter().map(|e| e.id.clone()).collect(),
        text_examples: opts.text_examples,
    })
}

/// A support example's answer as shown: captions trimmed and lowercased (the caption rule
/// lowercases model outputs, so examples match what the model should write); other answers trimmed.
pub fn support_answer(kind: TaskKind, s: &PromptSample) -> Result<String, BuildError> {
    let a = s
        .answer
        .as_deref()
        .ok_or_else(|| BuildError::MissingField(format!("answer of support example {}", s.id)))?;
    Ok(match kind {
        TaskKind::Caption => a.trim().to_lowercase(),
        _ => a.trim().to_owned(),
    })
}

/// A support example's answer in a gated task's answerability stage: the gate's answerable or
/// unanswerable output (`yes.`, `no.`), the two strings the constrained generation can produce
/// (emu-model.md 3.5). Without an `answerable` flag the registry's unanswerable answer means no.
pub fn answerability_label(task: Task, s: &PromptSample) -> Result<String, BuildError> {
    let g =
        task.entry().inference.gate().ok_or_else(|| {
            BuildError::Conflict(format!("{} has no answerability gate", task.id()))
        })?;
    let answerable = match (s.answerable, s.answer.as_deref()) {
        (Some(b), _) => b,
        (None, Some(a)) => a.trim() != g.unanswerable_answer,
        (None, None) => {
            return Err(BuildError::MissingField(format!("answerable of support example {}", s.id)))
        }
    };
    Ok(if answerable { g.answerable } else { g.unanswerable }.to_owned())
}

struct Builder<'a> {
    fam: &'a FamilyTemplates,
    task: Task,
    opts: &'a PromptOptions,
}

impl Builder<'_> {
    fn stage(&self, name: &str, kind: StageKind, parts: Vec<Part>) -> Stage {
        Stage {
            name: name.to_owned(),
            kind,
            parts: merge_text(parts),
            n_causal: self.opts.n_causal,
        }
    }

    fn system(&self) -> &str {
        if self.task.is_video() {
            &self.fam.system_video
        } else {
            &self.fam.system_image
        }
    }

    /// Zero-shot captioning prompt on one item's media (chain-of-thought stage 1).
    fn caption_stage(
        &self,
        name: &str,
        item: &PromptSample,
        frames: usize,
    ) -> Result<Stage, BuildError> {
        let t = self.fam.task(TaskKind::Caption.template_key())?;
        let mut parts = vec![Part::Text(self.system().to_owned())];
        parts.extend(self.item(t, item, Some(frames), &CaptionSource::None)?);
        Ok(self.stage(name, StageKind::Caption, parts))
    }

    /// System message, each example (template, answer, separator), then the query template.
    #[allow(clippy::too_many_arguments)]
    fn prompt(
        &self,
        t: &TaskTemplate,
        examples: &[PromptSample],
        captions: &[CaptionSource],
        with_media: bool,
        query: &PromptSample,
        query_caption: &CaptionSource,
        answer_of: &dyn Fn(&PromptSample) -> Result<String, BuildError>,
    ) -> Result<Vec<Part>, BuildError> {
        let mut parts = vec![Part::Text(self.system().to_owned())];
        for (ex, cap) in examples.iter().zip(captions) {
            let frames = with_media.then_some(self.opts.support_frames);
            parts.extend(self.item(t, ex, frames, cap)?);
            let answer = answer_of(ex)?;
            parts.extend(fill(&t.answer, &mut |n| {
                Ok((n == "answer").then(|| vec![Part::Text(answer.clone())]))
            })?);
            parts.push(Part::Text(self.fam.example_separator.clone()));
        }
        parts.extend(self.item(t, query, Some(self.opts.query_frames), query_caption)?);
        Ok(parts)
    }

    /// One filled template. `frames`: `None` = media removed, else frames per video.
    fn item(
        &self,
        t: &TaskTemplate,
        s: &PromptSample,
        frames: Option<usize>,
        caption: &CaptionSource,
    ) -> Result<Vec<Part>, BuildError> {
        let media_suffix = t.media_suffix.as_deref().unwrap_or(&self.fam.media_suffix);
        let missing = |f: &str| BuildError::MissingField(format!("{f} of sample {}", s.id));
        fill(&t.template, &mut |name| {
            Ok(Some(match name {
                "media" => match frames {
                    Some(k) if !s.media.is_empty() => {
                        let mut v = vec![Part::Text(t.media_prefix.clone().unwrap_or_default())];
                        v.extend(media_parts(&s.media, k));
                        v.push(Part::Text(media_suffix.to_owned()));
                        v
                    }
                    _ => Vec::new(),
                },
                "question" => {
                    vec![Part::Text(s.question.clone().ok_or_else(|| missing("question"))?)]
                }
                "caption_clause" => match (&t.caption_clause, caption) {
                    (Some(clause), CaptionSource::Known(c)) => fill(clause, &mut |n| {
                        Ok((n == "caption").then(|| vec![Part::Text((*c).to_owned())]))
                    })?,
                    (Some(clause), CaptionSource::Stage(st)) => fill(clause, &mut |n| {
                        Ok((n == "caption").then(|| vec![Part::StageOutput(st.clone())]))
                    })?,
                    _ => Vec::new(),
                },
                "history" => {
                    let turn = t.history_turn.as_deref().ok_or_else(|| {
                        BuildError::BadTemplate("{history} without history_turn".into())
                    })?;
                    let mut v = Vec::new();
                    for h in &s.history {
                        v.extend(fill(turn, &mut |n| {
                            Ok(match n {
                                "question" => Some(vec![Part::Text(h.question.clone())]),
                                "answer" => Some(vec![Part::Text(h.answer.clone())]),
                                _ => None,
                            })
                        })?);
                    }
                    v
                }
                _ => return Ok(None),
            }))
        })
    }
}

/// Image blocks of an item: one per image, `k` per video (frame `i` of `k`).
pub fn media_parts(media: &[MediaRef], k: usize) -> Vec<Part> {
    let mut v = Vec::new();
    for m in media {
        match m {
            MediaRef::Image { path, .. } => {
                v.push(Part::Media(MediaSlot { path: path.display().to_string(), frame: None }))
            }
            MediaRef::Video { path, .. } => {
                let p = path.display().to_string();
                v.extend(
                    (0..k).map(|i| Part::Media(MediaSlot { path: p.clone(), frame: Some((i, k)) })),
                )
            }
        }
    }
    v
}
