"""The obvious pandas + scikit-learn approach, timed against sistack on the same file.

What a data scientist typically writes (and what the system this product replaces did): read
with pandas, engineer features with pandas, scale with two scalers, KMeans with n_init=10 for
each k, silhouette on all rows to choose k, write the result to XLSX. Both approaches run on the
same data, in this process, one after the other, so the ratio is measured on one machine.

Usage:
    python bench/baseline.py --customers 224000 [--k-max 8] [--json]
    (needs pandas: pip install -e '.[bench]')
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pipeline import data_file


def baseline(path: Path, out: Path, *, k_max: int) -> dict:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    start = time.perf_counter()
    df = pd.read_csv(path)
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
    best = (-1.0, 2, None)
    for scaler in (StandardScaler(), MinMaxScaler()):
        Z = scaler.fit_transform(X)
        for k in range(2, k_max + 1):
            labels = KMeans(n_clusters=k, n_init=10, random_state=42).fit_predict(Z)
            score = silhouette_score(Z, labels)
            if score > best[0]:
                best = (score, k, labels)
    df["Segment"] = best[2]
    df.groupby("Segment")[features].mean().to_excel(out.with_suffix(".profiles.xlsx"))
    df.to_excel(out, index=False)
    return {
        "approach": "pandas+sklearn baseline",
        "k": best[1],
        "wall_s": round(time.perf_counter() - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=224_000)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = data_file(args.customers, "csv", "customers")
    child = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "pipeline.py"), "--child", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    ours = json.loads(child.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        theirs = baseline(path, Path(tmp) / "segments.xlsx", k_max=args.k_max)
    ratio = theirs["wall_s"] / ours["wall_s"]
    if args.json:
        print(json.dumps({"sistack": ours, "baseline": theirs, "speedup": round(ratio, 1)}))
        return
    print(f"sistack  : {ours['wall_s']:>8.2f} s  (k={ours['k']}, peak {ours['peak_rss_mb']:,} MB)")
    print(f"baseline : {theirs['wall_s']:>8.2f} s  (k={theirs['k']})")
    print(f"speed-up : {ratio:.1f}x on {ours['rows']:,} customers")


if __name__ == "__main__":
    main()
