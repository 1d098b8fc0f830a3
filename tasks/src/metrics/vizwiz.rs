//! vizwiz (to be written).
