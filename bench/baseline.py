"""The obvious pandas + scikit-learn approach, timed against sistack on the same file.

What a data scientist typically writes (and what the system this product replaces did): read
with pandas, engineer features with pandas, scale with two scalers, KMeans with n_init=10 for
each k, silhouette on all rows to choose k, write the result to XLSX. Both approaches run on the
same data, on this machine, one after the other, so the ratio is measured in one run.

The baseline's all-rows silhouette grows with the square of the customers: at 224,000 it takes
hours. It therefore runs in a child process under a time budget (``--budget``, default: 60
times sistack's own time). It prints a line per step as it goes (read, features, each
scaler x k fit and silhouette, XLSX). When it finishes, the speed-up is measured outright. When
the budget runs out first, the child is stopped and two figures are printed: the measured lower
bound (budget / sistack time: the baseline had not finished by then) and an estimate of its
full time, extrapolated from the steps it completed (steps not reached are assumed to cost what
the completed ones of the same kind cost on average).

Usage:
    python bench/baseline.py --customers 224000 [--k-max 8] [--budget SECONDS] [--json]
    (needs pandas: pip install -e '.[bench]')
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import data_file


def _step(name: str, start: float, **extra: Any) -> None:
    """One progress line for the parent: the step and the seconds since the baseline began."""
    record = {"step": name, "t": round(time.perf_counter() - start, 2), **extra}
    print(json.dumps(record), flush=True)


def baseline(path: Path, out: Path, *, k_max: int) -> dict:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    start = time.perf_counter()
    df = pd.read_csv(path)
    _step("read", start)
    df["Income"] = df["Income"].fillna(df["Income"].median())
    df["Dt_Customer"] = pd.to_datetime(df["Dt_Customer"], format="%d-%m-%Y")
    df["Age"] = df["Dt_Customer"].max().year - df["Year_Birth"]
    df["Tenure"] = (df["Dt_Customer"].max() - df["Dt_Customer"]).dt.days
    spend = [c for c in df.columns if c.startswith("Mnt")]
    buys = ["NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases"]
    df["Spend"] = df[spend].sum(axis=1)
    df["Purchases"] = df[buys].sum(axis=1)
    df["Children"] = df["Kidhome"] + df["Teenhome"]
    df["DealShare"] = df["NumDealsPurchases"] / df["Purchases"].replace(0, 1)
    df["Accepted"] = df[[c for c in df.columns if c.startswith("AcceptedCmp")]].sum(axis=1)
    features = [
        "Income",
        "Age",
        "Tenure",
        "Recency",
        "Spend",
        "Purchases",
        "Children",
        "DealShare",
        "Accepted",
        "NumWebVisitsMonth",
        *buys,
    ]
    X = df[features].to_numpy(dtype=float)
    _step("features", start)
    best = (-1.0, 2, None)
    for scaler in (StandardScaler(), MinMaxScaler()):
        Z = scaler.fit_transform(X)
        for k in range(2, k_max + 1):
            labels = KMeans(n_clusters=k, n_init=10, random_state=42).fit_predict(Z)
            _step("kmeans", start, scaler=type(scaler).__name__, k=k)
            score = silhouette_score(Z, labels)
            _step("silhouette", start, scaler=type(scaler).__name__, k=k)
            if score > best[0]:
                best = (score, k, labels)
    df["Segment"] = best[2]
    df.groupby("Segment")[features].mean().to_excel(out.with_suffix(".profiles.xlsx"))
    df.to_excel(out, index=False)
    _step("xlsx", start)
    return {
        "approach": "pandas+sklearn baseline",
        "k": best[1],
        "wall_s": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_baseline(path: Path, *, k_max: int, budget: float) -> dict[str, Any]:
    """The baseline in a child process, stopped after ``budget`` seconds; its figures."""
    steps: list[dict[str, Any]] = []
    command = [sys.executable, __file__, "--child", str(path), "--k-max", str(k_max)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        began = time.perf_counter()
        watch = selectors.DefaultSelector()
        watch.register(child.stdout, selectors.EVENT_READ)
        result: dict[str, Any] | None = None
        while result is None and time.perf_counter() - began < budget:
            if not watch.select(timeout=min(5.0, budget)):
                if child.poll() is not None:
                    break
                continue
            line = child.stdout.readline()
            if not line:
                break
            record = json.loads(line)
            step = record.get("step", "done")
            print(f"  baseline {step:<10} {record.get('t', '')}", file=sys.stderr)
            if "step" in record:
                steps.append(record)
            else:
                result = record
        if result is None:
            child.kill()
    if result is not None:
        return {**result, "finished": True, "steps": steps}
    if child.returncode not in (None, 0, -9):  # it failed: no figure, rather than a wrong one
        raise SystemExit(f"the baseline failed (exit code {child.returncode}); see above")
    stopped = time.perf_counter() - began
    return {
        "approach": "pandas+sklearn baseline",
        "finished": False,
        "stopped_after_s": round(stopped, 1),
        "estimated_wall_s": _at_least(_extrapolate(steps, k_max=k_max), stopped),
        "steps": steps,
    }


def _extrapolate(steps: list[dict[str, Any]], *, k_max: int) -> float | None:
    """The baseline's full time, from the steps it completed (None before its first fit)."""
    by_kind: dict[str, list[float]] = {"kmeans": [], "silhouette": []}
    last = 0.0
    for step in steps:
        if step["step"] in by_kind:
            by_kind[step["step"]].append(step["t"] - last)
        last = step["t"]
    if not by_kind["kmeans"] or not by_kind["silhouette"]:
        return None
    fits = 2 * (k_max - 1)  # two scalers x k = 2..k_max
    done = len(by_kind["silhouette"])
    mean = {kind: sum(v) / len(v) for kind, v in by_kind.items()}
    missing_fits = fits - len(by_kind["kmeans"])
    missing_scores = fits - done
    # The XLSX write is not reached: it is left out, so the estimate is low, never high.
    return round(last + missing_fits * mean["kmeans"] + missing_scores * mean["silhouette"], 1)


def _at_least(estimate: float | None, stopped: float) -> float | None:
    """An estimate is never below the time the baseline was seen running."""
    return None if estimate is None else max(estimate, stopped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=224_000)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--budget", type=float, help="seconds (default: 60x sistack's time)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            figures = baseline(Path(args.child), Path(tmp) / "segments.xlsx", k_max=args.k_max)
        print(json.dumps(figures), flush=True)
        return
    path = data_file(args.customers, "csv", "customers")
    child = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "pipeline.py"), "--child", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = json.loads(child.stdout.strip().splitlines()[-1])
    budget = args.budget if args.budget is not None else 60 * ours["wall_s"]
    theirs = run_baseline(path, k_max=args.k_max, budget=budget)
    if theirs["finished"]:
        figures = {"speedup": round(theirs["wall_s"] / ours["wall_s"], 1)}
    else:
        estimate = theirs["estimated_wall_s"]
        figures = {
            "speedup_at_least": round(theirs["stopped_after_s"] / ours["wall_s"], 1),
            "speedup_estimated": round(estimate / ours["wall_s"], 1) if estimate else None,
        }
    if args.json:
        print(json.dumps({"sistack": ours, "baseline": theirs, **figures}))
        return
    print(f"sistack  : {ours['wall_s']:>8.2f} s  (k={ours['k']}, peak {ours['peak_rss_mb']:,} MB)")
    if theirs["finished"]:
        print(f"baseline : {theirs['wall_s']:>8.2f} s  (k={theirs['k']})")
        print(f"speed-up : {figures['speedup']:.1f}x on {ours['rows']:,} customers")
        return
    print(f"baseline : not finished after {theirs['stopped_after_s']:.0f} s (stopped)", end="")
    estimate = theirs["estimated_wall_s"]
    print(f"; estimated {estimate:,.0f} s from its completed steps" if estimate else "")
    least = figures["speedup_at_least"]
    print(f"speed-up : at least {least:.1f}x on {ours['rows']:,} customers", end="")
    print(f" (estimated {figures['speedup_estimated']:.0f}x)" if estimate else "")


if __name__ == "__main__":
    main()
