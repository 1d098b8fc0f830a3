//! npy (to be written).
