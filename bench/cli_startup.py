"""How long the ``relay`` command takes to start: ``--help``, ``--version`` and ``stats``.

Runs each command ``--runs`` times as a fresh process (the installed ``relay`` console script,
next to this interpreter) and reports the median wall time, with ``python -c pass`` measured in
the same invocation, interleaved, as the baseline (the machine's own start-up cost and load),
and the median CPU time (user + system) of each child, which a busy machine disturbs less than
wall time.
``relay stats`` runs on an empty SQLite database migrated first. Targets (issue 13):
``relay --help`` under 0.3 s and ``relay stats`` under 0.6 s; exits 1 if a median misses its
target. ``-X importtime`` of the slowest command is printed with ``--importtime``.

    .venv/bin/python bench/cli_startup.py [--runs 21] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RELAY = str(Path(sys.executable).with_name("relay"))
TARGETS = {"relay --help": 0.3, "relay stats": 0.6}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    cpu, start = _cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        env["RELAY_DATABASE_URL"] = f"sqlite:///{tmp}/relay.db"
        subprocess.run([RELAY, "migrate"], env=env, capture_output=True, check=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "relay --help": [RELAY, "--help"],
            "relay --version": [RELAY, "--version"],
            "relay stats": [RELAY, "stats"],
            "relay stats --json": [RELAY, "stats", "--json"],
        }
        for argv in commands.values():  # warm the page cache and .pyc files
            _time(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so load changes hit every command alike
            for name, argv in commands.items():
                wall, used = _time(argv, env)
                samples[name].append(wall)
                cpu[name].append(used)
        if args.importtime:
            out = subprocess.run(
                [sys.executable, "-X", "importtime", RELAY, "stats"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            rows = [
                line
                for line in out.stderr.splitlines()
                if line.startswith("import time") and line.split("|")[1].strip().isdigit()
            ]
            slowest = sorted(rows, key=lambda r: int(r.split("|")[1]), reverse=True)[:25]
            print("\n".join(slowest), end="\n\n")
    base = statistics.median(samples["python -c pass"])
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    base_cpu = statistics.median(cpu["python -c pass"])
    print(
        f"{'command':<22}{'median s':>10}{'min s':>9}{'x baseline':>12}{'cpu s':>8}"
        f"{'cpu x base':>12}{'target s':>10}  ok"
    )
    missed = False
    for name, values in samples.items():
        med = statistics.median(values)
        target = TARGETS.get(name)
        ok = "" if target is None else ("yes" if med < target else "NO")
        missed |= ok == "NO"
        print(
            f"{name:<22}{med:>10.3f}{min(values):>9.3f}{med / base:>12.1f}"
            f"{statistics.median(cpu[name]):>8.3f}"
            f"{statistics.median(cpu[name]) / base_cpu:>12.1f}"
            f"{'' if target is None else f'{target:.1f}':>10}  {ok}"
        )
    print(f"({args.runs} runs each, interleaved; baseline python -c pass = {base:.3f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
