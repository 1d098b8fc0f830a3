//! Metrics, each following `shared/spec/metrics.md` (quirks of the references kept on purpose).
pub mod bleu;
pub mod caption;
pub mod cider;
pub mod fid;
pub mod npy;
pub mod npz;
pub mod porter;
pub mod postprocess;
pub mod ptb;
pub mod result;
pub mod rouge;
pub mod videoqa;
pub mod visdial;
pub mod vizwiz;
pub mod vqa;
pub mod wordnet;
pub mod wups;
