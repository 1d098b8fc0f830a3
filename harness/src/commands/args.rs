//! Flags shared by several commands, each defined once: `--task` (validated against the task
//! registry, whose ids the help lists) and `--model-family`.
use clap::builder::PossibleValuesParser;
use clap::ValueEnum;
use prompts::Family;
use tasks::registry::{self, Task};

/// `--task ID`: one of the registry's ids.
#[derive(clap::Args, Debug, Clone)]
pub struct TaskArg {
    /// Task id (from the task registry; see `emu-eval tasks`).
    #[arg(long = "task", value_parser = task_parser())]
    pub id: String,
}

impl TaskArg {
    pub fn get(&self) -> &'static Task {
        lookup(&self.id)
    }
}

/// A clap parser accepting exactly the registry's ids.
pub fn task_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(registry::ids())
}

/// The registry entry of an id that clap has already validated.
pub fn lookup(id: &str) -> &'static Task {
    registry::get(id).unwrap_or_else(|| unreachable!("clap validated --task {id}"))
}

/// `--model-family`: the template family.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
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
