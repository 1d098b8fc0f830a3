//! videoqa (to be written).
