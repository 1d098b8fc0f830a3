//! Snapshot tests: the exact prompt of every task × family × mode, compared with
//! `tests/snapshots/<task>.<family>.<mode>.txt` (each file checked by hand against the spec's
//! templates). `UPDATE_SNAPSHOTS=1 cargo test -p prompts --test snapshots` rewrites them.
use std::path::PathBuf;

use prompts::{build, Family, MediaRef, PromptOptions, PromptPlan, PromptSample, Task, Turn};

fn sample(task: Task, i: usize, query: bool) -> PromptSample {
    let split = if query { "val" } else { "train" };
    let image = |n: usize| MediaRef::image(format!("{split}/img{n}.jpg"));
    let video = |n: usize| MediaRef::video(format!("videos/{split}{n}.mp4"));
    let shapes = [
        "red circle",
        "blue square",
        "green triangle",
        "yellow diamond",
        "purple cross",
        "orange star",
    ];
    let shape = shapes[i % shapes.len()];
    let mut s = PromptSample { id: format!("{split}-{i}"), ..Default::default() };
    match task {
        Task::CocoCaption => {
            s.media = vec![image(i)];
            s.answer = Some(format!("A {shape} on a light background. "));
        }
        Task::Vqav2 | Task::Okvqa => {
            s.media = vec![image(i)];
            s.question = Some(format!("What color is the shape {i}?"));
            s.answer = Some(shape.split(' ').next().unwrap_or_default().to_owned());
        }
        Task::Vizwiz => {
            s.media = vec![image(i)];
            s.question = Some("What is this?".to_owned());
            s.answer = Some(if i % 3 == 1 { "unanswerable".to_owned() } else { shape.to_owned() });
            s.answerable = Some(i % 3 != 1);
        }
        Task::Visdial => {
            s.media = vec![image(i)];
            let rounds = if query { 2 } else { i % 3 };
            s.history = (0..rounds)
                .map(|r| Turn { question: format!("is it round {r}"), answer: "yes".to_owned() })
                .collect();
            s.question = Some("what color is it".to_owned());
            s.answer = Some(shape.split(' ').next().unwrap_or_default().to_owned());
        }
        Task::MsvdQa | Task::MsrvttQa => {
            s.media = vec![video(i)];
            s.question = Some("what is moving?".to_owned());
            s.answer = Some(shape.split(' ').nth(1).unwrap_or_default().to_owned());
        }
        Task::Nextqa => {
            s.media = vec![video(i)];
            s.question = Some("what does the shape do after it appears".to_owned());
            s.answer = Some("slides right".to_owned());
        }
    }
    s
}

/// Support example 1 of VisDial and 2 of the others carry a known caption, so both caption
/// sources (known, generated) show up in the chain-of-thought snapshots.
fn support(task: Task) -> Vec<PromptSample> {
    (0..8)
        .map(|i| {
            let mut s = sample(task, i, false);
            if i == 1 {
                s.caption = Some(format!("a known caption of example {i}"));
            }
            s
        })
        .collect()
}

const MODES: [&str; 6] = ["zero", "shots2", "shots8", "cot", "cot_shots2", "text"];

fn options(mode: &str) -> PromptOptions {
    let mut o = PromptOptions::default();
    match mode {
        "zero" => {}
        "shots2" => o.shots = 2,
        "shots8" => o.shots = 8,
        "cot" => o.cot = true,
        "cot_shots2" => {
            o.cot = true;
            o.shots = 2
        }
        "text" => o.text_examples = true,
        _ => unreachable!(),
    }
    o
}

/// Human-readable listing: per stage its name, the files feeding the image blocks, the text.
fn listing(plan: &PromptPlan) -> String {
    let mut s = format!(
        "example_separator: {:?}\nsupport: {:?}\n",
        plan.example_separator, plan.support_ids
    );
    for st in &plan.stages {
        let images: Vec<String> = st
            .media()
            .iter()
            .map(|m| match m.frame {
                Some((i, k)) => format!("{}#{}/{}", m.path, i, k),
                None => m.path.clone(),
            })
            .collect();
        s.push_str(&format!(
            "=== stage {} ({:?})\nimages: {}\n{}\n",
            st.name,
            st.kind,
            images.join(" "),
            st.text()
        ));
    }
    s
}

fn snapshot_path(task: Task, family: Family, mode: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!(
        "{}.{}.{}.txt",
        task.id(),
        family.key(),
        mode
    ))
}

#[test]
fn every_task_family_mode_matches_its_snapshot() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for task in Task::all() {
        let query = sample(task, 0, true);
        let support = support(task);
        for family in [Family::Emu, Family::EmuI] {
            for mode in MODES {
                let got = match build(task, family, &query, &support, &options(mode)) {
                    Ok(plan) => listing(&plan),
                    Err(e) => format!("error: {e}\n"),
                };
                let path = snapshot_path(task, family, mode);
                if update {
                    std::fs::write(&path, &got).unwrap();
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(want) if want == got => {}
                    Ok(_) => failures.push(format!("{} differs", path.display())),
                    Err(e) => failures.push(format!("{}: {e}", path.display())),
                }
            }
        }
    }
    assert!(failures.is_empty(), "snapshot mismatches:\n{}", failures.join("\n"));
}
