//! The Emu model in candle (EVA-CLIP vision tower, causal transformer, multimodal LLaMA).
