//! One module per subcommand: `Args` (clap) and `run(args)`. Handlers stay thin.
pub mod args;
pub mod convert;
pub mod data;
pub mod generate;
pub mod index;
pub mod inspect;
pub mod merge;
pub mod metric;
pub mod model_args;
pub mod neighbours;
pub mod prompt;
pub mod rank;
pub mod regress;
pub mod run;
pub mod score;
pub mod tasks_list;
