// Integration tests: drive the `emu-eval` binary on ../shared fixtures.
mod common;
mod metrics;
mod model;
mod decode;
mod prompts;
mod datasets;
mod run;
mod reporting;
mod sample_data;
mod hostile;
mod hostile_fuzz;
mod rices;
mod t2i;
