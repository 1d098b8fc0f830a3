//! Decoding on the Emu model against `shared/fixtures/emu-tiny` (library level; the command-level
//! generation parity is in the harness's `tests/decode.rs`).
use candle_core::{DType, Device};
use models::decode::rank_emu::{encode_candidates, rank_naive, rank_shared, single_prompt_embeds};
use models::emu::Emu;

/// The shared-prefix computation gives the naive (reference-shaped) losses, for several segment
/// counts and chunk sizes.
#[test]
fn shared_prefix_ranking_equals_naive() {
    let emu =
        Emu::load(&models::testing::fixture("emu-tiny"), None, DType::F32, &Device::Cpu).unwrap();
    let pixels = models::testing::vectors("emu-tiny").remove("pixel_values_cat").unwrap();
    let prompt = "[IMG]<image><image><image><image>[/IMG]Question: what is on the table? Answer:";
    let embeds = single_prompt_embeds(&emu, prompt, Some(&pixels)).unwrap();
    let cands: Vec<String> = [
        "yes",
        "no",
        "a cat",
        "a small brown dog",
        "two",
        "i can't tell",
        "it is sunny outside today",
        "blue",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cands = encode_candidates(&emu, &cands).unwrap();
    for segments in [1, 3, 8] {
        let naive = rank_naive(&emu, &embeds, &cands, segments).unwrap();
        for chunk in [1, 3, 100] {
            let shared = rank_shared(&emu, &embeds, &cands, segments, chunk).unwrap();
            for (a, b) in shared.losses.iter().zip(&naive.losses) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "segments {segments} chunk {chunk}: {a} vs {b}"
                );
            }
            assert_eq!(shared.order, naive.order);
        }
    }
}
