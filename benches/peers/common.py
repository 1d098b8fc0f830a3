"""Shared helpers of the peer benchmarks: run commands alternately, measure each run.

Each run is a fresh process. Measured per run: wall time, CPU time (user + system of the process
and the children it waited for, from wait4), cores used (CPU / wall), peak memory as the largest
sum of VmRSS over the process tree (sampled every 20 ms; forked workers' shared pages count once
per process) and the kernel's ru_maxrss of the main process, minor page faults (ru_minflt: mostly
fresh pages being zeroed), and the 1-minute load average before the run. Standard library only, so it runs under any Python 3.
"""
import glob
import os
import re
import statistics
import subprocess
import threading
import time


def _tree(pid):
    """pid and all its descendants (from /proc/*/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd, env=None, cwd=None):
    """One run of `cmd`: a dict of wall_s, cpu_s, cores, peak_tree_mib, maxrss_mib, load1."""
    load1 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], sum(_rss_kib(p) for p in _tree(proc.pid)))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = b"", b""
    # wait4 (not communicate) so the run's rusage comes back; outputs are small and go to pipes
    # drained by threads.
    chunks = {"out": [], "err": []}
    readers = [
        threading.Thread(target=lambda s=proc.stdout, k="out": chunks[k].append(s.read())),
        threading.Thread(target=lambda s=proc.stderr, k="err": chunks[k].append(s.read())),
    ]
    for r in readers:
        r.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = b"".join(chunks["out"]), b"".join(chunks["err"])
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    cpu = ru.ru_utime + ru.ru_stime
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cores": cpu / wall,
        "peak_tree_mib": peak[0] / 1024,
        "maxrss_mib": ru.ru_maxrss / 1024,
        "load1": load1,
        "minflt": ru.ru_minflt,
        "stdout": stdout.decode(),
    }


def alternate(sides, rounds):
    """Runs each (name, cmd, env) once per round, in turn; returns {name: [run, ...]}."""
    results = {name: [] for name, _, _ in sides}
    for r in range(rounds):
        for name, cmd, env in sides:
            res = run(cmd, env=env)
            results[name].append(res)
            print(
                f"round {r + 1} {name}: {res['wall_s']:.2f} s wall, {res['cpu_s']:.2f} s CPU "
                f"({res['cores']:.2f} cores), peak {res['peak_tree_mib']:.0f} MiB "
                f"(maxrss {res['maxrss_mib']:.0f}), {res['minflt']} minor faults, load {res['load1']:.2f}",
                flush=True,
            )
    return results


def summary(results, reference, ours):
    """Prints medians per side and the ratio reference / ours of median wall time."""
    med = {}
    print("\n| side | median wall s | median CPU s | cores | peak MiB (tree) | maxrss MiB | minor faults | load1 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "stdout"}
        med[name] = m
        print(
            f"| {name} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['cores']:.2f} | "
            f"{max(r['peak_tree_mib'] for r in runs):.0f} | {max(r['maxrss_mib'] for r in runs):.0f} | "
            f"{m['minflt']:.0f} | {m['load1']:.2f} |"
        )
    ratio = med[reference]["wall_s"] / med[ours]["wall_s"]
    print(f"\nratio {reference} / {ours} (median wall): {ratio:.2f}x")
    return med, ratio


def forward_times(results, key="forward_s"):
    """The `<key> <seconds>` line each run printed, per side; None if a run printed none."""
    times = {}
    for name, runs in results.items():
        found = [re.search(rf"(?m)^{key} ([0-9.]+)", r["stdout"]) for r in runs]
        if not all(found):
            return None
        times[name] = [float(m.group(1)) for m in found]
    return times


def time_forwards(forward):
    """Runs `forward` `PEER_REPEAT` times (default 1) and returns the first output; prints the
    first run's time as `forward_s` and, with several runs, the last one's as `warm_forward_s`
    (the bench binary `peer` does the same)."""
    repeat = max(1, int(os.environ.get("PEER_REPEAT", "1")))
    first = None
    for i in range(repeat):
        t0 = time.perf_counter()
        out = forward()
        secs = time.perf_counter() - t0
        if i == 0:
            print(f"forward_s {secs:.4f}", flush=True)
            first = out
        if i == repeat - 1 and repeat > 1:
            print(f"warm_forward_s {secs:.4f}", flush=True)
    return first


def warm_env(sides, warm):
    """Makes every side run `warm` more forwards after the first (`PEER_REPEAT`)."""
    if warm:
        for _, _, env in sides:
            env["PEER_REPEAT"] = str(warm + 1)


def newest_peer_bin(root):
    """The newest `peer` bench binary (cargo build --release -p models --bench peer)."""
    bins = [p for p in glob.glob(os.path.join(root, "target", "release", "deps", "peer-*"))
            if os.access(p, os.X_OK) and not p.endswith(".d")]
    if not bins:
        raise SystemExit("no peer binary: cargo build --release -p models --bench peer")
    return max(bins, key=os.path.getmtime)


def report_forward(times, reference, ours):
    """Per-run and median forward times and the ratio of medians reference / ours."""
    print("\n| side | forward s per run | median forward s |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in ts)} | {statistics.median(ts):.2f} |")
    ratio = statistics.median(times[reference]) / statistics.median(times[ours])
    print(f"\nratio {reference} / {ours} (median forward alone): {ratio:.2f}x")


def compare_forward(sides, rounds, reference, label, before_bin, before_out, outputs, key):
    """Runs `sides` alternately (with `before_bin` as a third side writing `before_out`, when
    given), prints the process and forward-alone tables and the agreement of the two sides'
    output files `outputs` = (ours, reference) on the tensor `key`."""
    if before_bin:
        before = [before_bin, *sides[0][1][1:]]
        before[4] = before_out
        sides.insert(1, (f"{label} (before)", before, dict(sides[0][2])))
    results = alternate(sides, rounds)
    summary(results, reference, label)
    report_forward(forward_times(results), reference, label)
    warm = forward_times(results, "warm_forward_s")
    if warm:
        print("\nwarm forwards (the last of each process's PEER_REPEAT runs):")
        report_forward(warm, reference, label)
    from safetensors.numpy import load_file

    a, b = (load_file(path)[key] for path in outputs)
    print(f"agreement: shapes {a.shape} {b.shape}, max |Δ| {abs(a - b).max():.3e}, max |ref| {abs(b).max():.3e}")
