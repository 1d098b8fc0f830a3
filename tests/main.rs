// Integration tests: drive the `emu-eval` binary on ../shared fixtures.
mod common;
mod metrics;
mod model;
mod decode;
mod prompts;
mod datasets;
mod t2i;
