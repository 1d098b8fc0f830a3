"""Command-level timing: `emu-eval metric caption --input F` against pycocoevalcap's PTBTokenizer +
BLEU-1..4 + ROUGE-L + CIDEr-D on the same file (`caption_reference.py --pipeline F`), each as a
fresh process (start-up, reading and printing included), median of N runs, same session; CPU
time (user + system of the process and its children, Java included) as the mean per run.
Checks that both print the same corpus scores (|diff| <= 1e-9).

Usage: python3 caption_command.py EMU_EVAL INPUT.json [RUNS]
  INPUT.json: `target/caption-bench/input.json`, written by `cargo bench -p tasks --bench caption`.
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

binary, path = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
reference = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caption_reference.py")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, n):
    times, out = [], None
    c0 = children_cpu()
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
        out = p.stdout
    return statistics.median(times), min(times), out, (children_cpu() - c0) / n


commands = {
    "emu-eval metric caption": [binary, "metric", "caption", "--input", path],
    "emu-eval metric caption --per-image": [binary, "metric", "caption", "--input", path, "--per-image"],
}
results = {}
for name, cmd in commands.items():
    timed(cmd, 1)  # warm the page cache
    med, best, out, cpu = timed(cmd, runs)
    results[name] = (med, cpu, json.loads(out)["corpus"])
    print(f"{name}: median {med * 1e3:.1f} ms, best {best * 1e3:.1f} ms of {runs}, CPU {cpu * 1e3:.1f} ms; "
          f"{len(out):,} bytes of output")

ref_runs = max(1, runs // 2)
med, best, out, ref_cpu = timed([sys.executable, reference, "--pipeline", path], ref_runs)
ref_corpus = json.loads(out.decode().strip().splitlines()[-1])["corpus"]
print(f"pycocoevalcap (PTBTokenizer + Bleu(4) + Rouge + Cider): median {med:.2f} s, best {best:.2f} s of {ref_runs}, "
      f"CPU {ref_cpu:.2f} s")

ours = results["emu-eval metric caption"][2]
diff = max(abs(ours[k] - ref_corpus[k]) for k in ref_corpus)
print(f"corpus scores: max |diff| {diff:.1e} over {', '.join(ref_corpus)}")
for name, (m, cpu, _) in results.items():
    print(f"speed-up of `{name}`: {med / m:.0f}x median wall, {ref_cpu / cpu:.0f}x CPU")
if diff > 1e-9:
    sys.exit("corpus scores differ")
