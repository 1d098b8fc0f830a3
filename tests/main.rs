// Integration tests: drive the `emu-eval` binary on ../shared fixtures.
mod common;
mod contract;
mod conventions;
mod datasets;
mod decode;
mod faults;
mod hostile;
mod hostile_fuzz;
mod metrics;
mod model;
mod prompts;
mod reporting;
mod reproduce;
mod rices;
mod run;
mod sample_data;
mod t2i;
