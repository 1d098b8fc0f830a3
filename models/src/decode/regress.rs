//! `Emu.generate_image`'s regression of the visual embeddings (spec §5.3), incremental with a KV
//! cache: the prompt plus `[IMG]` runs once, then each regressed embedding is fed as the input of
//! the next `<image>` slot.
use crate::Result;
use candle_core::{DType, IndexOp, Tensor};

use super::emu_lm::{encode_images, expand_image_marker, ids_tensor};
use crate::emu::{Emu, KvCache};

/// Regressed conditioning embeddings (1, n_causal, hidden) for one prompt; `[<IMG_PLH>]` in the
/// text marks where each of `pixels`' images goes.
pub fn regress_embeddings(emu: &Emu, text: &str, pixels: Option<&Tensor>) -> Result<Tensor> {
    let device = emu.device();
    let n_causal = emu.cfg.n_causal;
    let text = format!("{}[IMG]", expand_image_marker(text, n_causal));
    let ids = emu.tokenizer().encode(&text);
    let l = ids.len();
    let images = encode_images(emu, pixels)?;
    let embeds = emu.embed(&ids_tensor(&[ids], device)?, images.as_ref())?;
    let mut cache = KvCache::new(emu);
    let pos: Vec<i64> = (0..l as i64).collect();
    let hidden = emu.forward_embeds(
        &embeds,
        &Tensor::from_vec(pos, (1, l), device)?,
        &Tensor::ones((1, l), DType::U32, device)?,
        &mut cache,
    )?;
    let mut e = emu.regress_head(&hidden.i((.., l - 1..l, ..))?)?; // (1, 1, h): from the [IMG] position
    let mut outs = vec![e.clone()];
    for k in 1..n_causal {
        let pos = Tensor::from_vec(vec![(l - 1 + k) as i64], (1, 1), device)?;
        let mask = Tensor::ones((1, l + k), DType::U32, device)?;
        let hidden = emu.forward_embeds(&e, &pos, &mask, &mut cache)?;
        e = emu.regress_head(&hidden)?;
        outs.push(e.clone());
    }
    Ok(Tensor::cat(&outs, 1)?)
}
