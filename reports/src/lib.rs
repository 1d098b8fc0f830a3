//! reports crate.
