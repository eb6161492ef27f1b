"""`make bench`: run every benchmark in bench/ and print their JSON results together.

Each bench/<name>.py is run as `python -m bench.<name>` in its own process (so one
cannot disturb the next) and must print one JSON object as its last stdout line.
The soak run is shortened here (--soak-minutes); the real one is
`python -m bench.soak --minutes 30`.

    python -m bench                   # all of them
    python -m bench --only scaling    # one of them
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(
        p.stem
        for p in BENCH_DIR.glob("*.py")
        if not p.stem.startswith("_") and p.stem != "__main__"
    )


def run_one(name: str, extra: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *extra],
        capture_output=True,
        text=True,
        cwd=BENCH_DIR.parent,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        return {
            "benchmark": name,
            "error": f"exit {proc.returncode}",
            "stderr": proc.stderr[-2000:],
        }
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"benchmark": name, "error": "last line is not JSON", "stdout": lines[-1][:500]}
    return result if isinstance(result, dict) else {"benchmark": name, "result": result}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="run just this benchmark (repeatable)")
    parser.add_argument("--soak-minutes", type=float, default=2.0)
    args = parser.parse_args()
    names = args.only or discover()
    unknown = set(names) - set(discover())
    if unknown:
        parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")
    results = []
    for name in names:
        extra = ["--minutes", str(args.soak_minutes)] if name == "soak" else []
        print(f"running bench.{name} …", file=sys.stderr, flush=True)
        results.append(run_one(name, extra))
    print(json.dumps(results, ensure_ascii=False, indent=2))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
