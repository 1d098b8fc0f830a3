//! cider (to be written).
