"""Text generation: emu-eval's `models::decode::generate` on its LLaMA against transformers 4.29
`LlamaForCausalLM.generate` on the same random weights and prompts, run alternately.

usage (from the repository root, after benches/peers/setup.sh and
`cargo build --release -p models --example generate_peer`):
    benches/peers/.venv/bin/python benches/peers/generate.py [--rounds R] [--cases greedy-b1,...]
        [--hidden 1024 --layers 8 --heads 16 --intermediate 2816] [--prompts 8] [--new-tokens 32]

Writes once, under target/peers/generate-<shape>/: a model directory in the layout emu-eval loads
(config.json and tokenizer of the tiny fixture with the LLaMA resized, model.safetensors with the
tiny vision tower / causal former and a LLaMA of deterministic random weights, `decoder.lm.*`
keys) and prompts.json (token-id prompts of different lengths, BOS first). Both sides feed the
prompts as embeddings with a left-padded attention mask, as Emu's official `generate` does
(spec emu-model.md §3.2-3.3: `inputs_embeds`, pad 32000, bos 1, eos 2, min_length 1,
length_penalty 0, early_stopping False, no sampling).

With `--bf16-values` the LLaMA weights are rounded to bf16 values (f32 tensors on both sides, as
Emu's bf16 checkpoint loaded in f32; emu-eval's GEMV then streams a lossless bf16 copy), written
to a separate folder.

Cases: greedy batch 1, beam 5 batch 1, beam 5 batch 8 (each over all prompts). Each run is a
fresh process; besides the process-level numbers of common.py (which include loading torch or
the model), each side reports the time, CPU time and minor page faults of the generation alone
(token ids in -> ids out), and the ratio of medians of that time is the headline number. The
script fails unless both sides produce identical ids.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import alternate, summary  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY = os.path.join(ROOT, "..", "shared", "fixtures", "emu-tiny")
CASES = {"greedy-b1": (1, 1), "beam5-b1": (5, 1), "beam5-b8": (5, 8)}
VOCAB = 32004
BOS, EOS, PAD = 1, 2, 32000


def llama_config(a):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=VOCAB, hidden_size=a.hidden, intermediate_size=a.intermediate,
        num_hidden_layers=a.layers, num_attention_heads=a.heads, rms_norm_eps=1e-6,
        max_position_embeddings=2048, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=0,
        tie_word_embeddings=False, torch_dtype="float32",
    )


def prepare(a, folder):
    """Writes the model directory and the prompts once."""
    if os.path.exists(os.path.join(folder, "prompts.json")):
        return
    import numpy as np
    import torch
    from safetensors.numpy import load_file, save_file
    from transformers import LlamaForCausalLM

    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(2026)
    model = LlamaForCausalLM(llama_config(a))  # HF init: normal(0, 0.02), norms 1
    tensors = {
        k: v for k, v in load_file(os.path.join(TINY, "model.safetensors")).items()
        if not k.startswith("decoder.lm.") and not k.startswith("cformer.projection.")
    }
    tiny = load_file(os.path.join(TINY, "model.safetensors"))
    rng = np.random.default_rng(2026)
    for k in ("cformer.projection.weight", "cformer.projection.bias"):
        shape = (a.hidden,) + tiny[k].shape[1:]
        tensors[k] = (rng.standard_normal(shape) * 0.02).astype(np.float32)
    for k, v in model.state_dict().items():
        if "rotary_emb.inv_freq" in k:
            continue
        if a.bf16_values:  # as a bf16 checkpoint (Emu's) loaded in f32: f32 tensors of bf16 values
            v = v.to(torch.bfloat16).to(torch.float32)
        tensors[f"decoder.lm.{k}"] = v.detach().numpy().astype(np.float32).copy()
    tensors["decoder.lm.stu_regress_head.weight"] = (
        rng.standard_normal((a.hidden, a.hidden)) * 0.02).astype(np.float32)
    save_file(tensors, os.path.join(folder, "model.safetensors"))

    with open(os.path.join(TINY, "config.json")) as f:
        cfg = json.load(f)
    cfg["llama"].update(hidden_size=a.hidden, intermediate_size=a.intermediate,
                        num_attention_heads=a.heads, num_hidden_layers=a.layers,
                        head_dim=a.hidden // a.heads, vocab_size=VOCAB)
    cfg["causal_former"]["output_dim"] = a.hidden
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        with open(os.path.join(TINY, name), "rb") as src, open(os.path.join(folder, name), "wb") as dst:
            dst.write(src.read())
    lengths = rng.integers(12, 48, a.prompts)
    prompts = [[BOS] + rng.integers(3, 31999, n - 1).tolist() for n in lengths]
    with open(os.path.join(folder, "prompts.json"), "w") as f:
        json.dump(prompts, f)


def hf_worker(folder, beams, batch, new_tokens, hidden, layers, heads, intermediate):
    """The transformers side, in its own process: prints one JSON line like generate_peer."""
    import resource
    import time

    import torch
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM
    from transformers.modeling_utils import no_init_weights

    a = argparse.Namespace(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate)
    with no_init_weights():
        model = LlamaForCausalLM(llama_config(a))
    sd = {k[len("decoder.lm."):]: v for k, v in load_file(os.path.join(folder, "model.safetensors")).items()
          if k.startswith("decoder.lm.") and "stu_regress_head" not in k}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if [m for m in missing if "rotary_emb" not in m] or unexpected:
        raise SystemExit(f"weights: missing {missing}, unexpected {unexpected}")
    model.eval()
    with open(os.path.join(folder, "prompts.json")) as f:
        prompts = json.load(f)

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    ids = []
    with torch.no_grad():
        for s in range(0, len(prompts), batch):
            chunk = prompts[s:s + batch]
            width = max(len(p) for p in chunk)
            input_ids = torch.tensor([[PAD] * (width - len(p)) + p for p in chunk])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
            embeds = model.get_input_embeddings()(input_ids)
            out = model.generate(
                inputs_embeds=embeds, attention_mask=mask, do_sample=False, num_beams=beams,
                max_new_tokens=new_tokens, min_length=1, length_penalty=0.0, early_stopping=False,
                num_return_sequences=1, repetition_penalty=1.0, bos_token_id=BOS,
                eos_token_id=EOS, pad_token_id=PAD, use_cache=True,
            )
            for row in out.tolist():
                gen = row[1:]  # the dummy BOS the generator tracks
                if EOS in gen:
                    gen = gen[: gen.index(EOS) + 1]
                ids.append(gen)
    gen_s = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "gen_s": gen_s,
        "gen_cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
        "gen_minflt": r1.ru_minflt - r0.ru_minflt,
        "tokens": sum(len(i) for i in ids),
        "ids": ids,
    }))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=2816)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--ours", default=os.path.join(ROOT, "target", "release", "examples", "generate_peer"))
    ap.add_argument("--env-ours", nargs="*", default=[], help="extra K=V for emu-eval's side")
    ap.add_argument("--env-peer", nargs="*", default=[],
                    help="extra K=V for the transformers side (e.g. OMP_NUM_THREADS=1)")
    ap.add_argument("--label", default="emu-eval")
    ap.add_argument("--before", help="a generate_peer binary of an earlier build: a third side")
    ap.add_argument("--bf16-values", action="store_true",
                    help="LLaMA weights rounded to bf16 values (still f32 tensors, both sides), as "
                         "Emu's bf16 checkpoint loaded in f32")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        folder, beams, batch, new_tokens = a.worker
        hf_worker(folder, int(beams), int(batch), int(new_tokens), a.hidden, a.layers, a.heads, a.intermediate)
        return

    shape = f"h{a.hidden}-l{a.layers}-n{a.heads}-i{a.intermediate}-p{a.prompts}"
    if a.bf16_values:
        shape += "-bf16v"
    folder = os.path.join(ROOT, "target", "peers", f"generate-{shape}")
    prepare(a, folder)
    ours_env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.env_ours))
    peer_env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.env_peer))
    shape_args = ["--hidden", str(a.hidden), "--layers", str(a.layers), "--heads", str(a.heads),
                  "--intermediate", str(a.intermediate)]
    print(f"LLaMA hidden {a.hidden}, {a.layers} layers, {a.heads} heads, intermediate {a.intermediate}, "
          f"vocab {VOCAB}, f32{' (bf16 values)' if a.bf16_values else ''}; {a.prompts} prompts, {a.new_tokens} new tokens; {a.rounds} rounds; "
          f"cores: {os.cpu_count()}; model {folder}")
    headline, by_case = [], {}
    for case in a.cases.split(","):
        beams, batch = CASES[case]
        print(f"\n## {case}: num_beams {beams}, batch {batch}")
        sides = [
            (a.label, [a.ours, "--model", folder, "--prompts", os.path.join(folder, "prompts.json"),
                       "--beams", str(beams), "--batch", str(batch), "--max-new-tokens",
                       str(a.new_tokens)], ours_env),
            ("transformers", [sys.executable, os.path.abspath(__file__), *shape_args, "--worker", folder,
                              str(beams), str(batch), str(a.new_tokens)], peer_env),
        ]
        if a.before:
            sides.insert(1, (f"{a.label} before", [a.before, *sides[0][1][1:]], ours_env))
        results = alternate(sides, a.rounds)
        summary(results, "transformers", a.label)
        gen = {name: [json.loads(r["stdout"].strip().splitlines()[-1]) for r in runs]
               for name, runs in results.items()}
        ids = {name: [g["ids"] for g in runs] for name, runs in gen.items()}
        for name, runs in ids.items():
            if any(r != runs[0] for r in runs):
                raise SystemExit(f"{case}: {name} gave different ids across runs")
        for name in ids:
            if ids[name][0] != ids["transformers"][0]:
                diff = [i for i, (x, y) in enumerate(zip(ids[name][0], ids["transformers"][0])) if x != y]
                raise SystemExit(f"{case}: ids of {name} and transformers differ (prompts {diff})")
        print(f"\ngeneration alone (in-process; ids identical, {gen[a.label][0]['tokens']} tokens):")
        print("| side | median s | median CPU s | cores | minor faults | faults / token |")
        print("|---|---|---|---|---|---|")
        med = {}
        for name, runs in gen.items():
            m = {k: statistics.median(g[k] for g in runs) for k in ("gen_s", "gen_cpu_s", "gen_minflt")}
            med[name] = m
            print(f"| {name} | {m['gen_s']:.2f} | {m['gen_cpu_s']:.2f} | {m['gen_cpu_s'] / m['gen_s']:.2f} | "
                  f"{m['gen_minflt']:.0f} | {m['gen_minflt'] / gen[name][0]['tokens']:.0f} |")
        ratio = med["transformers"]["gen_s"] / med[a.label]["gen_s"]
        print(f"ratio transformers / {a.label} (median generation time): {ratio:.2f}x")
        if a.before:
            before = med[f"{a.label} before"]["gen_s"] / med[a.label]["gen_s"]
            print(f"ratio {a.label} before / {a.label} (median generation time): {before:.2f}x")
        headline.append((case, ratio))
        by_case[case] = ids[a.label][0]
    if "beam5-b1" in by_case and "beam5-b8" in by_case:
        same = by_case["beam5-b1"] == by_case["beam5-b8"]
        print(f"\n{a.label}: beam 5 ids at batch 1 and batch 8 identical: {same}")
        if not same:
            raise SystemExit("batch size changed emu-eval's ids")
    print("\n" + ", ".join(f"{c}: {r:.2f}x" for c, r in headline))


if __name__ == "__main__":
    main()
