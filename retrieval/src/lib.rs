//! retrieval crate.
