"""Reference timing for benches/caption.rs: pycocoevalcap 1.2 on the data the bench dumps.

Times the CoreNLP 3.4.1 PTBTokenizer (Java, as COCOEvalCap runs it: references and candidates
in two runs) when `java` is available, and the Python `Bleu(4)`, `Rouge` and `Cider` scorers on
the pre-tokenized strings. Checks tokens and scores against the Rust values. Last stdout line
is JSON.
Usage: python3 caption_reference.py DATA.json   (needs `pip install pycocoevalcap`)
       python3 caption_reference.py --pipeline INPUT.json
           `emu-eval metric caption`'s job on its input file: PTBTokenizer, then BLEU-1..4,
           ROUGE-L and CIDEr-D; prints the corpus scores as JSON (used by caption_command.py).
"""
import contextlib
import io
import json
import resource
import shutil
import sys
import time

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge


def bleu_quiet(gts, res):
    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its statistics
        return Bleu(4).compute_score(gts, res)


if sys.argv[1] == "--pipeline":
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    images = json.load(open(sys.argv[2]))["images"]
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in im["references"]] for i, im in enumerate(images)})
    res = tok.tokenize({i: [{"caption": im["candidate"]}] for i, im in enumerate(images)})
    bleu, _ = bleu_quiet(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    corpus = dict(zip(["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"], bleu))
    corpus.update(ROUGE_L=rouge, CIDEr=cider)
    print(json.dumps({"corpus": corpus}))
    sys.exit(0)

data = json.load(open(sys.argv[1]))
images = data["images"]
out = {}

if shutil.which("java"):
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r} for r in im["references"]] for i, im in enumerate(images)}
    res = {i: [{"caption": im["candidate"]}] for i, im in enumerate(images)}
    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    c0, t0 = children_cpu(), time.perf_counter()
    tok = PTBTokenizer()
    gts_tok = tok.tokenize(gts)
    res_tok = tok.tokenize(res)
    out["tokenizer_s"] = time.perf_counter() - t0
    out["tokenizer_cpu_s"] = children_cpu() - c0  # the java processes
    mism = sum(gts_tok[i] != im["references_tokenized"] or res_tok[i] != [im["candidate_tokenized"]]
               for i, im in enumerate(images))
    out["tokenizer_mismatched_images"] = mism
else:
    out["tokenizer_s"] = None

gts = {i: im["references_tokenized"] for i, im in enumerate(images)}
res = {i: [im["candidate_tokenized"]] for i, im in enumerate(images)}
times, cpu = [], []
for _ in range(3):
    c0, t0 = time.process_time(), time.perf_counter()
    score, scores = Cider().compute_score(gts, res)
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
out["cider_s"] = sorted(times)[1]
out["cider_cpu_s"] = sorted(cpu)[1]
out["cider"] = score
out["max_abs_diff_per_image"] = max(abs(a - im["cider"]) for a, im in zip(scores, images))
out["abs_diff_corpus"] = abs(score - data["cider"])
print(f"reference: tokenizer {out['tokenizer_s']} s wall / {out.get('tokenizer_cpu_s')} s CPU (java), "
      f"cider {out['cider_s']:.3f} s wall / {out['cider_cpu_s']:.3f} s CPU (median of 3); CIDEr-D = {score:.6f}")

# BLEU-1..4 and ROUGE-L on the same tokenized strings (one run each).
t0 = time.perf_counter()
bleu, _ = bleu_quiet(gts, res)
out["bleu_s"] = time.perf_counter() - t0
t0 = time.perf_counter()
rouge, _ = Rouge().compute_score(gts, res)
out["rouge_s"] = time.perf_counter() - t0
rust = data["corpus"]
out["abs_diff_bleu_4"] = abs(bleu[3] - rust["Bleu_4"])
out["abs_diff_rouge_l"] = abs(rouge - rust["ROUGE_L"])
print(f"reference: bleu {out['bleu_s']:.3f} s, rouge-l {out['rouge_s']:.3f} s wall; "
      f"Bleu_4 = {bleu[3]:.6f}, ROUGE_L = {rouge:.6f}")
print(json.dumps(out))
