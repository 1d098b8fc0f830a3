//! [`StepModel`] for the Emu language model: left-padded prompt batches, KV-cached steps with
//! mask-derived position ids (spec §3.2), beam reordering of the cache.
use crate::{ModelError, Result};
use candle_core::{DType, Device, IndexOp, Tensor};

use super::config::PAD_ID;
use super::lm::{Logits, StepModel};
use crate::emu::{Emu, KvCache};

/// Prompts tokenised with BOS and left-padded to the longest (pad 32000, mask 0), as the
/// official `generate` tokenises them (`padding="longest"`, `padding_side="left"`).
#[derive(Debug, Clone, PartialEq)]
pub struct LeftPadded {
    pub ids: Vec<Vec<u32>>,
    pub mask: Vec<Vec<u32>>,
}

/// Left-pads token rows to the longest row.
pub fn left_pad(rows: &[Vec<u32>], pad: u32) -> LeftPadded {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = LeftPadded { ids: Vec::new(), mask: Vec::new() };
    for r in rows {
        let n = width - r.len();
        out.ids.push(std::iter::repeat_n(pad, n).chain(r.iter().copied()).collect());
        out.mask.push(std::iter::repeat_n(0, n).chain(std::iter::repeat_n(1, r.len())).collect());
    }
    out
}

/// Generation position ids (`prepare_inputs_for_generation`): `cumsum(mask) − 1`, padded
/// positions set to 1.
pub fn generation_positions(mask: &[u32]) -> Vec<i64> {
    let mut seen = 0i64;
    mask.iter()
        .map(|&m| {
            seen += m as i64;
            if m == 0 {
                1
            } else {
                seen - 1
            }
        })
        .collect()
}

/// The `[IMG]<image>×n[/IMG]` placeholder of one image.
pub fn image_placeholder(n_causal: usize) -> String {
    crate::emu::tokenizer::image_block(n_causal)
}

/// `[<IMG_PLH>]` (the `generate_image` input marker) replaced by the image placeholder.
pub fn expand_image_marker(text: &str, n_causal: usize) -> String {
    text.replace("[<IMG_PLH>]", &image_placeholder(n_causal))
}

/// Image embeddings of `pixels` (n, 3, H, W), or none.
pub fn encode_images(emu: &Emu, pixels: Option<&Tensor>) -> Result<Option<Tensor>> {
    match pixels {
        Some(p) => Ok(Some(emu.encode_images(&p.to_dtype(emu.dtype())?.to_device(emu.device())?)?)),
        None => Ok(None),
    }
}

/// Tokenises and left-pads `prompts`, embeds them and splices the images (row-major order).
pub fn prompt_embeds(
    emu: &Emu,
    prompts: &[String],
    pixels: Option<&Tensor>,
) -> Result<(LeftPadded, Tensor)> {
    if prompts.is_empty() {
        bail!("no prompt given");
    }
    let rows: Vec<Vec<u32>> = prompts.iter().map(|p| emu.tokenizer().encode(p)).collect();
    let batch = left_pad(&rows, PAD_ID);
    let ids = ids_tensor(&batch.ids, emu.device())?;
    let images = encode_images(emu, pixels)?;
    let embeds = emu
        .embed(&ids, images.as_ref())
        .map_err(|e| ModelError::from(e).context("splicing image embeddings"))?;
    Ok((batch, embeds))
}

pub(crate) fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    let width = rows.first().map_or(0, Vec::len);
    Ok(Tensor::from_vec(rows.concat(), (rows.len(), width), device)?)
}

fn mask_tensor(rows: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    ids_tensor(rows, device)
}

fn positions_tensor(rows: &[Vec<i64>], device: &Device) -> Result<Tensor> {
    let width = rows.first().map_or(0, Vec::len);
    Ok(Tensor::from_vec(rows.concat(), (rows.len(), width), device)?)
}

/// Last-position logits (b, t, V) → [`Logits`] of the b rows.
fn last_logits(emu: &Emu, hidden: &Tensor) -> Result<Logits> {
    let (b, t, _) = hidden.dims3()?;
    let logits = emu.next_token_logits(&hidden.i((.., t - 1..t, ..))?)?.to_dtype(DType::F32)?;
    let vocab = logits.dim(2)?;
    let data = logits.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Logits::new(b, vocab, data))
}

/// A generation session over the Emu LM: prefilled with the prompt embeddings, then one token per
/// row per step (attention mask grows by a 1, position = unmasked count − 1).
pub struct EmuSession<'a> {
    emu: &'a Emu,
    cache: KvCache,
    mask: Vec<Vec<u32>>,
    prompt: Option<Logits>,
}

impl<'a> EmuSession<'a> {
    /// Runs the prompt (b, L, h) with its mask and generation position ids.
    pub fn prefill(emu: &'a Emu, embeds: &Tensor, mask: Vec<Vec<u32>>) -> Result<Self> {
        let device = emu.device();
        let positions: Vec<Vec<i64>> = mask.iter().map(|m| generation_positions(m)).collect();
        let mut cache = KvCache::new(emu);
        let hidden = emu.forward_embeds(
            embeds,
            &positions_tensor(&positions, device)?,
            &mask_tensor(&mask, device)?,
            &mut cache,
        )?;
        let prompt = last_logits(emu, &hidden)?;
        Ok(EmuSession { emu, cache, mask, prompt: Some(prompt) })
    }

    /// Tokenises, pads, splices and prefills a batch of prompts.
    pub fn from_prompts(emu: &'a Emu, prompts: &[String], pixels: Option<&Tensor>) -> Result<Self> {
        let (batch, embeds) = prompt_embeds(emu, prompts, pixels)?;
        Self::prefill(emu, &embeds, batch.mask)
    }
}

impl StepModel for EmuSession<'_> {
    fn prompt_logits(&mut self) -> Result<Logits> {
        self.prompt.take().ok_or_else(|| ModelError::Input("prompt logits already taken".into()))
    }

    fn step(&mut self, tokens: &[u32]) -> Result<Logits> {
        let device = self.emu.device();
        if tokens.len() != self.mask.len() {
            bail!("step with {} tokens for {} rows", tokens.len(), self.mask.len());
        }
        let ids = Tensor::from_vec(tokens.to_vec(), (tokens.len(), 1), device)?;
        // Generated ids are plain tokens (a random model may well produce `<image>`).
        let embeds = self.emu.embed_tokens(&ids)?;
        let mut positions = Vec::with_capacity(tokens.len());
        for m in self.mask.iter_mut() {
            m.push(1);
            positions.push(vec![m.iter().map(|&v| v as i64).sum::<i64>() - 1]);
        }
        let hidden = self.emu.forward_embeds(
            &embeds,
            &positions_tensor(&positions, device)?,
            &mask_tensor(&self.mask, device)?,
            &mut self.cache,
        )?;
        last_logits(self.emu, &hidden)
    }

    fn reorder(&mut self, rows: &[usize]) -> Result<()> {
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        self.cache.index_select(&Tensor::from_vec(idx, rows.len(), self.emu.device())?)?;
        self.mask = rows.iter().map(|&r| self.mask[r].clone()).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_and_positions() {
        let b = left_pad(&[vec![1, 5, 6], vec![1, 2, 3, 4, 5]], PAD_ID);
        assert_eq!(b.ids[0], vec![PAD_ID, PAD_ID, 1, 5, 6]);
        assert_eq!(b.mask[0], vec![0, 0, 1, 1, 1]);
        assert_eq!(generation_positions(&b.mask[0]), vec![1, 1, 0, 1, 2]);
        assert_eq!(generation_positions(&b.mask[1]), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn image_marker() {
        assert_eq!(expand_image_marker("[<IMG_PLH>]Now", 2), "[IMG]<image><image>[/IMG]Now");
    }

    /// A generated `<image>` id is fed back as an ordinary token (HF `generate` embeds decoding
    /// steps with `embed_tokens`), not refused for lacking image embeddings.
    #[test]
    fn a_generated_image_token_is_an_ordinary_token() {
        use crate::emu::{builtin, tokenizer::IMAGE};
        let emu = builtin::tiny(0, false, candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut s =
            EmuSession::from_prompts(&emu, &["a photo of".to_owned(), "x".to_owned()], None)
                .unwrap();
        s.prompt_logits().unwrap();
        let l = s.step(&[IMAGE, 5]).unwrap();
        assert_eq!((l.rows, l.vocab), (2, emu.cfg.llama.vocab_size));
        assert!(l.data.iter().all(|x| x.is_finite()));
    }
}
