//! Text-to-image with Emu (spec §5): the regressed embeddings of a prompt and of the empty prompt
//! (classifier-free guidance) drive the visual decoder; images are written as PNG per caption id
//! with resume, and FID is computed against cached real-image statistics (`fid`).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use models::decoder::{GenerateOptions, Generated, VisualDecoder};
use tasks::rng::SplitMix64;

use models::decode::regress::regress_embeddings;
use models::emu::Emu;

pub mod builtin;
pub mod captions;
pub mod fid;
pub mod sources;

/// Standard normal latents (1, 4, h, w) from a seed: SplitMix64 uniforms through Box–Muller.
/// Not torch's generator: images are reproducible within emu-eval; use `--init-latents` to
/// start from another implementation's noise.
pub fn seeded_latents(
    shape: (usize, usize, usize, usize),
    seed: u64,
    device: &Device,
) -> Result<Tensor> {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let mut rng = SplitMix64::new(seed);
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1 = 1.0 - rng.uniform(); // (0, 1]
        let u2 = rng.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        v.push((r * a.cos()) as f32);
        v.push((r * a.sin()) as f32);
    }
    v.truncate(n);
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// The noise seed of one caption: the run seed mixed with the caption id.
pub fn caption_seed(seed: u64, caption_id: u64) -> u64 {
    SplitMix64::new(seed ^ caption_id.wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64()
}

/// The `initial_latents` tensor of a safetensors file, checked against the decoder's shape.
pub fn read_init_latents(path: &Path, shape: (usize, usize, usize, usize)) -> Result<Tensor> {
    let mut t = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let x = t
        .remove("initial_latents")
        .with_context(|| format!("{}: initial_latents: no such tensor", path.display()))?;
    let want = [shape.0, shape.1, shape.2, shape.3];
    if x.dims() != want {
        bail!(
            "{}: initial_latents: shape {:?}, the decoder expects {want:?}",
            path.display(),
            x.dims()
        );
    }
    Ok(x.to_dtype(DType::F32)?)
}

/// Writes uint8 RGB (HWC) as an 8-bit PNG.
pub fn write_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> Result<()> {
    let err = || format!("{}: cannot write PNG", path.display());
    let file = std::io::BufWriter::new(std::fs::File::create(path).with_context(err)?);
    let mut enc = png::Encoder::new(file, width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().with_context(err)?.write_image_data(rgb).with_context(err)?;
    Ok(())
}

/// Emu plus the visual decoder, with the unconditional embeddings computed once.
pub struct TextToImage<'a> {
    pub emu: &'a Emu,
    pub decoder: &'a VisualDecoder,
    pub opts: GenerateOptions,
    /// Image side in pixels (a multiple of the VAE's scale factor).
    pub size: usize,
    uncond: Tensor,
}

impl<'a> TextToImage<'a> {
    pub fn new(
        emu: &'a Emu,
        decoder: &'a VisualDecoder,
        opts: GenerateOptions,
        size: usize,
    ) -> Result<Self> {
        let d = decoder.conditioning_width();
        if emu.cfg.llama.hidden_size != d {
            bail!("the decoder's UNet expects {d}-wide conditioning (cross_attention_dim/encoder_hid_dim), Emu's hidden size is {}", emu.cfg.llama.hidden_size);
        }
        let uncond = regress_embeddings(emu, "", None)?.to_dtype(DType::F32)?;
        Ok(Self { emu, decoder, opts, size, uncond })
    }

    /// Default image side: the UNet's `sample_size` times the VAE scale factor (512 for SD 1.5).
    pub fn default_size(decoder: &VisualDecoder) -> usize {
        decoder.unet_cfg.sample_size.unwrap_or(64) * decoder.vae_cfg.scale_factor()
    }

    pub fn latent_shape(&self) -> (usize, usize, usize, usize) {
        self.decoder.latent_shape(self.size, self.size)
    }

    /// One image; `pixels` are the context images (n, 3, 224, 224) for `[<IMG_PLH>]` markers.
    pub fn generate(
        &self,
        prompt: &str,
        pixels: Option<&Tensor>,
        init_latents: &Tensor,
    ) -> Result<Generated> {
        let cond = regress_embeddings(self.emu, prompt, pixels)?.to_dtype(DType::F32)?;
        Ok(self.decoder.generate(&cond, &self.uncond, init_latents, self.opts, |_| {})?)
    }
}

/// PNG path of one caption.
pub fn image_path(dir: &Path, caption_id: u64) -> PathBuf {
    dir.join(format!("{caption_id}.png"))
}

/// Generates `dir/{caption_id}.png` with noise seeded by `caption_seed(seed, id)`. The PNG is
/// written to a temporary name and renamed, so an interrupted run never leaves a partial image
/// that a resume would take as finished.
pub fn generate_one(
    t2i: &TextToImage,
    caption: &captions::Caption,
    dir: &Path,
    seed: u64,
) -> Result<()> {
    let path = image_path(dir, caption.id);
    let init =
        seeded_latents(t2i.latent_shape(), caption_seed(seed, caption.id), t2i.decoder.device())?;
    let img = t2i
        .generate(&caption.caption, None, &init)
        .with_context(|| format!("caption {}", caption.id))?;
    let tmp = path.with_extension("png.partial");
    write_png(&tmp, &img.rgb, img.width, img.height)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot rename", tmp.display()))
}
