//! One module per subcommand: `Args` (clap) and `run(args)`. Handlers stay thin.
pub mod convert;
pub mod data;
pub mod fid_stats;
pub mod generate;
pub mod generate_image;
pub mod inspect;
pub mod metric;
pub mod model_args;
pub mod pixels;
pub mod prompt;
pub mod rank;
pub mod regress;
pub mod score;
pub mod tasks_list;
