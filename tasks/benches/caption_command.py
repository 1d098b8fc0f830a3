"""Command-level timing: `emu-eval metric caption --input F` against pycocoevalcap's PTBTokenizer +
BLEU-1..4 + ROUGE-L + CIDEr-D on the same file (`caption_reference.py --pipeline F`), each as a
fresh process (start-up, reading and printing included), in the same session. The runs are
interleaved (each round: the emu-eval commands, then one reference run) so that both sides see
the same machine load; the load average is printed at the start and the end. Wall time is the
median over rounds; CPU time (user + system of the process and its children, Java included,
from wait4) the median too. `emu-eval --version` is timed as the process start-up floor.
Checks that both print the same corpus scores (|diff| <= 1e-9).

Usage: python3 caption_command.py EMU_EVAL INPUT.json [ROUNDS]
  INPUT.json: `target/caption-bench/input.json`, written by `cargo bench -p tasks --bench caption`.
"""
import json
import os
import statistics
import subprocess
import sys
import time

binary, path = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
reference = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caption_reference.py")


def timed(cmd):
    """(wall seconds, CPU seconds, stdout) of one run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{cmd}: exit status {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime, out


ours = {
    "emu-eval metric caption": [binary, "metric", "caption", "--input", path],
    "emu-eval metric caption --per-image": [binary, "metric", "caption", "--input", path, "--per-image"],
    "emu-eval --version (start-up only)": [binary, "--version"],
}
ref_name = "pycocoevalcap (PTBTokenizer + Bleu(4) + Rouge + Cider)"
ref_cmd = [sys.executable, reference, "--pipeline", path]
per_round = 3  # runs of each emu-eval command per round

print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
samples = {name: [] for name in [*ours, ref_name]}
outputs = {}
for cmd in [*ours.values(), ref_cmd]:
    timed(cmd)  # warm the page cache
for _ in range(rounds):
    for name, cmd in ours.items():
        for _ in range(per_round):
            wall, cpu, out = timed(cmd)
            samples[name].append((wall, cpu))
            outputs[name] = out
    wall, cpu, out = timed(ref_cmd)
    samples[ref_name].append((wall, cpu))
    outputs[ref_name] = out
print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

med = {n: (statistics.median(w for w, _ in s), statistics.median(c for _, c in s)) for n, s in samples.items()}
for name, (w, c) in med.items():
    s = samples[name]
    print(f"{name}: median wall {w * 1e3:.1f} ms (best {min(w for w, _ in s) * 1e3:.1f}), median CPU {c * 1e3:.1f} ms, "
          f"{len(s)} runs, {len(outputs[name]):,} bytes of output")

ref_corpus = json.loads(outputs[ref_name].decode().strip().splitlines()[-1])["corpus"]
our_corpus = json.loads(outputs["emu-eval metric caption"])["corpus"]
diff = max(abs(our_corpus[k] - ref_corpus[k]) for k in ref_corpus)
print(f"corpus scores: max |diff| {diff:.1e} over {', '.join(ref_corpus)}")
rw, rc = med[ref_name]
for name in list(ours)[:2]:
    w, c = med[name]
    print(f"speed-up of `{name}`: {rw / w:.1f}x median wall, {rc / c:.1f}x median CPU")
if diff > 1e-9:
    sys.exit("corpus scores differ")
