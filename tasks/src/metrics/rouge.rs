//! rouge (to be written).
