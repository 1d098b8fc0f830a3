//! RICES image features (datasets.md §1): the EVA-CLIP vision tower of the evaluated Emu.
//!
//! Default pooled vector: the CLS token of `ln_visual`'s output ([`Pooling::Cls`]). It is computed
//! only by weights Emu itself uses (the tower and `ln_visual`, which feed the causal former), so it
//! exists in every checkpoint the loader accepts; the CLIP projection (`visual.norm` +
//! `visual.head`, what OpenFlamingo's RICES uses with its own CLIP) is unused by Emu and dropped at
//! load. [`Pooling::Mean`] (mean over all 257 tokens) is the alternative.
//!
//! Every image feature is L2-normalised; a video's feature is the mean of its frames' features,
//! re-normalised. Frames come from Emu's sampler (2 per support video, 8 per query video).
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};
use rayon::prelude::*;
use tasks::datasets::Media;
use tasks::media::image::{decode_file, preprocess_with, Normalisation, RgbImage};
use tasks::media::video::read_frames;

use models::emu::config::VisionConfig;
use models::emu::vision::{self, EvaVisionTransformer};
use models::emu::Emu;

/// Computes one raw feature vector per decoded image. Tests use deterministic stand-ins.
pub trait FeatureExtractor: Sync {
    /// What identifies the features apart from the weights (kind, pooled vector, image size).
    fn recipe(&self) -> String;
    /// One feature per image, any scale (the caller normalises).
    fn embed(&self, images: &[RgbImage]) -> anyhow::Result<Vec<Vec<f32>>>;
}

/// Which vector of the `ln_visual` output is the feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Pooling {
    /// The CLS token (position 0).
    #[default]
    Cls,
    /// The mean over all tokens (CLS and patches).
    Mean,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
        }
    }
}

/// Something that maps pixels (n, 3, S, S) to `ln_visual` tokens (n, tokens, width).
pub trait VisualTokens: Sync {
    fn visual_tokens(&self, pixels: &Tensor) -> candle_core::Result<Tensor>;
    fn vision_config(&self) -> &VisionConfig;
    fn device(&self) -> &Device;
}

impl VisualTokens for Emu {
    fn visual_tokens(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        Emu::visual_tokens(self, pixels)
    }
    fn vision_config(&self) -> &VisionConfig {
        &self.cfg.vision
    }
    fn device(&self) -> &Device {
        Emu::device(self)
    }
}

/// The vision tower and `ln_visual` alone (benchmarks build random ones of any size).
pub struct VisionTower {
    visual: EvaVisionTransformer,
    ln_visual: LayerNorm,
    cfg: VisionConfig,
    device: Device,
}

impl VisionTower {
    /// `visual.*` and `ln_visual.*` from `vb` (checkpoint key names).
    pub fn new(
        cfg: &VisionConfig,
        ln_visual_eps: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let visual = EvaVisionTransformer::new(cfg, vb.pp("visual"))?;
        let ln_visual = vision::ln_visual(cfg.width, ln_visual_eps, vb.pp("ln_visual"))?;
        Ok(Self { visual, ln_visual, cfg: cfg.clone(), device: vb.device().clone() })
    }
}

impl VisualTokens for VisionTower {
    fn visual_tokens(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        self.ln_visual.forward(&self.visual.forward_features(pixels)?)
    }
    fn vision_config(&self) -> &VisionConfig {
        &self.cfg
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

/// EVA-CLIP features of a vision tower: images preprocessed as Emu's `process_img`, pooled.
pub struct VisionFeatures<'a> {
    pub tower: &'a dyn VisualTokens,
    pub pooling: Pooling,
}

impl FeatureExtractor for VisionFeatures<'_> {
    fn recipe(&self) -> String {
        let v = self.tower.vision_config();
        format!(
            "eva-clip:ln_visual:{}:{}px:width{}:blocks{}",
            self.pooling.name(),
            v.image_size,
            v.width,
            v.layers
        )
    }

    fn embed(&self, images: &[RgbImage]) -> anyhow::Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let v = self.tower.vision_config();
        let norm = Normalisation { size: v.image_size, mean: v.image_mean, std: v.image_std };
        let data: Vec<f32> =
            images.par_iter().flat_map_iter(|img| preprocess_with(img, &norm).data).collect();
        let px = Tensor::from_vec(
            data,
            (images.len(), 3, v.image_size, v.image_size),
            self.tower.device(),
        )?;
        let tokens = self.tower.visual_tokens(&px)?; // (n, tokens, width)
        let pooled = match self.pooling {
            Pooling::Cls => tokens.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => tokens.to_dtype(DType::F32)?.mean(1)?,
        }; // (n, width)
        Ok(pooled.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
    }
}

/// Features of media items, row-major: an image's feature L2-normalised, a video's the mean of
/// its `frames` frames' normalised features, re-normalised. Decoding runs on all cores; the
/// extractor sees batches of at most `batch` images.
pub fn media_features(
    ex: &dyn FeatureExtractor,
    media: &[&Media],
    frames: usize,
    batch: usize,
) -> anyhow::Result<Vec<f32>> {
    let decoded: Vec<Vec<RgbImage>> = media
        .par_iter()
        .map(|m| -> anyhow::Result<Vec<RgbImage>> {
            Ok(match m {
                Media::Image { path, .. } => vec![decode_file(path)?],
                Media::Video { path, .. } => read_frames(path, frames.max(1))?.frames,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let images: Vec<RgbImage> = decoded.iter().flatten().cloned().collect();
    let mut rows = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        rows.extend(ex.embed(chunk)?.into_iter().map(normalised));
    }
    let mut out = Vec::new();
    let mut next = rows.iter();
    for item in &decoded {
        let frame_rows: Vec<&[f32]> = next.by_ref().take(item.len()).map(Vec::as_slice).collect();
        let mean = retrieval::Features::mean_row(&frame_rows).ok_or_else(|| {
            anyhow::anyhow!("feature extractor returned rows of different lengths")
        })?;
        out.extend(normalised(mean));
    }
    Ok(out)
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    retrieval::normalize_row(&mut v);
    v
}
