"""How long `cnn-search --help` and `cnn-search spaces validate` take to start, beside bare Python
and beside `import tensorflow` (what they would cost if the CLI imported it). Target: --help < 0.5 s.

    python benchmarks/cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    exe = shutil.which("cnn-search") or sys.exit("cnn-search is not installed: pip install -e .")
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("cnn-search --help", [exe, "--help"]),
        ("cnn-search --version", [exe, "--version"]),
        (
            "cnn-search spaces validate spaces/*.yaml",
            [exe, "spaces", "validate", *map(str, sorted((ROOT / "spaces").glob("*.yaml")))],
        ),
        ("python -c 'import tensorflow' (for scale)", [sys.executable, "-c", "import tensorflow"]),
    ]
    print(f"{'command':<45} {'median s':>9} {'max s':>7}   (n={args.repeat}, target: --help < 0.5 s)")
    for label, cmd in rows:
        median, worst = timed(cmd, args.repeat if "tensorflow" not in label else min(3, args.repeat))
        print(f"{label:<45} {median:9.3f} {worst:7.3f}")


if __name__ == "__main__":
    main()
