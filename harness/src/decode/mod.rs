//! Decoding: batched KV-cached generation, beam search, option ranking, regression.
