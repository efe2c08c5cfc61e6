"""Memory and sampling time of the inference collector against an engine churning model labels.

A fake vLLM engine on 127.0.0.1 answers every scrape with ``--models`` model
names it never used before (LoRA adapters gone wild, a bug, a hostile page):
``--ticks`` scrapes show ticks x models distinct labels. Each tick runs the
collector as the exporter does (``InferenceSensor.sample`` then ``observe``)
and records the wall time of ``sample`` alone (drain, fold, render: what
delays the exporter's snapshot; the scrape and parse run on the engine's own
thread, waited for between ticks) and the process RSS. The collector's
``max_models`` (default 100) and ``model_expiry_seconds`` are left at their
defaults, as an operator would, unless the tree under test lacks them.

The same script measures the code before this change from another tree:

    python bench/bench_inference_churn.py                       # this tree
    git archive <commit> | tar -x -C /tmp/before
    python bench/bench_inference_churn.py --label before --tree /tmp/before --commit <commit>

``--tree DIR`` puts DIR's packages first on the import path (its package-dir
mapping rebuilt with symlinks under a temporary folder), so both runs execute
this same harness.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_exporter_common import REPO, command_line, percentile, write_results  # noqa: E402

# pyproject's package-dir: import name -> folder of the tree.
PACKAGE_DIRS = {"exporter": "exporter", "aggregator": "aggregator", "dashboards": "dashboards", "sql": "sql"}


def use_tree(tree: Path) -> None:
    """Import ``wattfleet`` from ``tree`` instead of this checkout (links rebuild its package-dir mapping)."""
    root = Path(tempfile.mkdtemp(prefix="wattfleet-tree-"))
    pkg = root / "wattfleet"
    pkg.mkdir()
    for item in (tree / "wattfleet").iterdir():
        (pkg / item.name).symlink_to(item)
    for name, folder in PACKAGE_DIRS.items():
        (pkg / name).symlink_to(tree / folder)
    sys.path.insert(0, str(root))


def churning_page(models: int) -> Callable[[], str]:
    """Page lines naming ``models`` models never named before, on every call."""
    turn = iter(range(1 << 62))

    def page() -> str:
        base = next(turn) * models
        lines = []
        for i in range(base, base + models):
            labels = f'{{model_name="adapter-{i}"}}'
            lines += [f"vllm:prompt_tokens_total{labels} {i % 997}.0",
                      f"vllm:generation_tokens_total{labels} {i % 89}.0",
                      f'vllm:request_success_total{{model_name="adapter-{i}",finished_reason="stop"}} 1.0',
                      f"vllm:num_requests_running{labels} 1.0"]
        return "\n".join(lines) + "\n"

    return page


def git_commit(tree: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def run(models: int, ticks: int) -> dict[str, Any]:
    # Imported only now: --tree decides which wattfleet these (and the fake engine's helpers) come from.
    from fixtures.inference_engines import EngineServer  # after --tree, see above
    from wattfleet.exporter.inference.config import EngineConfig  # after --tree, see above
    from wattfleet.exporter.inference.sensor import InferenceSensor  # after --tree, see above

    proc = psutil.Process()
    engine = EngineServer("vllm_v0.txt", prompt=1, gen=1, requests=1)
    engine.extra = churning_page(models)
    sensor = InferenceSensor([EngineConfig("vllm", engine.url, ("0",), timeout_seconds=30.0)], sync_wait=0.0)
    gc.collect()
    rss_start = proc.memory_info().rss
    sample_seconds, rss, series = [], [], 0
    try:
        sensor.sample(0.0)
        sensor.wait_for_scrapes(60.0)
        for tick in range(1, ticks + 1):
            started = time.perf_counter()
            result = sensor.sample(float(tick))
            sample_seconds.append(time.perf_counter() - started)
            sensor.observe({}, float(tick))
            series = len(result.samples)
            rss.append(proc.memory_info().rss)
            sensor.wait_for_scrapes(60.0)
    finally:
        sensor.close()
        engine.stop()
    mb = 1 / (1 << 20)
    return {"labels_seen": engine.hits * models, "rss_start_mb": rss_start * mb, "rss_end_mb": rss[-1] * mb,
            "rss_peak_mb": max(rss) * mb, "sample_seconds_p50": percentile(sample_seconds, 50),
            "sample_seconds_max": max(sample_seconds), "sample_seconds_last": sample_seconds[-1],
            "series_exported_last_tick": series, "rss_mb_per_tick": [round(r * mb, 1) for r in rss],
            "sample_ms_per_tick": [round(t * 1000, 2) for t in sample_seconds]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10_000, help="new model names on each page")
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--label", default="after", help="names the run in the results file")
    parser.add_argument("--tree", type=Path, default=None, help="import wattfleet from this source tree")
    parser.add_argument("--commit", default=None, help="the commit --tree was taken from (when it is no checkout)")
    parser.add_argument("--out", default=None, help="results folder (default bench/results/)")
    args = parser.parse_args(argv)
    tree = args.tree.resolve() if args.tree else REPO
    if args.tree:
        use_tree(tree)
    results = run(args.models, args.ticks)
    import wattfleet.exporter.inference.sensor as sensor_module  # which tree ran, for the record

    data = {"label": args.label, "commit": args.commit or git_commit(tree), "tree": str(tree),
            "code": str(Path(sensor_module.__file__).resolve().parent), "params": vars(args) | {
                "tree": str(args.tree) if args.tree else None}, "results": results}
    path = write_results(f"bench_inference_churn_{args.label}", data,
                         command_line("bench_inference_churn.py", sys.argv[1:] if argv is None else argv), args.out)
    print(f"{args.label}: RSS {results['rss_start_mb']:.0f} -> {results['rss_end_mb']:.0f} MB "
          f"(peak {results['rss_peak_mb']:.0f}), sample p50 {results['sample_seconds_p50'] * 1000:.1f} ms, "
          f"max {results['sample_seconds_max'] * 1000:.1f} ms, {results['series_exported_last_tick']} series; "
          f"{results['labels_seen']} labels seen -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
