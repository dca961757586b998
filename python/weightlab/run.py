"""A weightlab run folder as DataFrames."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

import pandas as pd

# The 0.975 quantile of Student's t for 1..30 degrees of freedom, then the Cornish-Fisher
# expansion: the same figures as the engine (engine/results/src/aggregate.rs), so a summary
# recomputed here equals the report's to the last digit.
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom, as the engine uses it."""
    if df <= 0:
        return math.nan
    if df <= 30:
        return _T975[df - 1]
    z, n = 1.959964, float(df)
    return z + (z**3 + z) / (4 * n) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n * n)


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric's declaration, as the engine's registry has it."""

    key: str
    label: str
    unit: str
    direction: str  # "higher", "lower" or "none" (a trade-off axis such as novelty)
    digits: int
    aggregation: str  # over a seed's samples: "mean" or "max"
    help: str


class Run:
    """One run folder. Tables are read on first use and kept."""

    def __init__(self, path: os.PathLike | str):
        self.path = pathlib.Path(path)
        if not (self.path / "samples.parquet").is_file():
            raise FileNotFoundError(f"{self.path} is not a weightlab run folder: it has no samples.parquet (run `weightlab run` first)")
        declared = self.path / "metrics.json"
        if declared.is_file():
            entries = json.loads(declared.read_text(encoding="utf-8"))["metrics"]
            self.metrics: Dict[str, Metric] = {m["key"]: Metric(**m) for m in entries}
        else:
            raise FileNotFoundError(f"{declared} is missing: re-render the report with `weightlab report {self.path}` (runs from before weightlab wrote it)")
        self._tables: Dict[str, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"weightlab.Run({str(self.path)!r}: {', '.join(self.tables())})"

    @property
    def name(self) -> str:
        return self.path.name

    def tables(self) -> List[str]:
        """The names of the tables this run has (``samples``, ``zoo``, ``finetune``, …)."""
        return sorted(p.stem for p in self.path.glob("*.parquet"))

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` as a pandas DataFrame; its metric columns' declarations are in
        ``df.attrs["metrics"]`` (key → :class:`Metric`)."""
        if name not in self._tables:
            path = self.path / f"{name}.parquet"
            if not path.is_file():
                raise KeyError(f"no table {name!r} in {self.path}; it has {', '.join(self.tables())}")
            df = pd.read_parquet(path)
            df.attrs["metrics"] = {k: m for k, m in self.metrics.items() if k in df.columns}
            self._tables[name] = df
        return self._tables[name]

    def polars(self, name: str):
        """Table ``name`` as a polars DataFrame (needs ``pip install polars``)."""
        import polars as pl

        return pl.read_parquet(self.path / f"{name}.parquet")

    @property
    def samples(self) -> pd.DataFrame:
        """One row per scored model: method, role, zoo, seed, sample and every metric."""
        return self.table("samples")

    @property
    def zoo(self) -> pd.DataFrame:
        return self.table("zoo")

    def methods(self) -> List[str]:
        return list(dict.fromkeys(self.samples["method"]))

    def summary(self) -> pd.DataFrame:
        """The report's summary: per (zoo, method), each metric reduced over a seed's samples
        (its aggregation), then mean and half-width of the 95 % t-interval over seeds —
        recomputed from the samples, in the report's row order (``summary.csv``'s)."""
        s = self.samples
        keys = [k for k in self.metrics if k in s.columns]
        rows = []
        for (zoo, method, role), group in s.groupby(["zoo", "method", "role"], sort=False):
            row = {"zoo": zoo, "method": method, "role": role, "seeds": group["seed"].nunique(), "samples": len(group)}
            for key in keys:
                how = self.metrics[key].aggregation
                per_seed = []
                present = group[key].notna().any()
                for _, by_seed in group.groupby("seed"):
                    finite = [v for v in by_seed[key] if v is not None and not (isinstance(v, float) and not math.isfinite(v))]
                    if finite:
                        per_seed.append(max(finite) if how == "max" else sum(finite) / len(finite))
                mean, ci = _over_seeds(per_seed) if per_seed and present else (math.nan, math.nan)
                row[key], row[f"{key}_ci95"] = mean, ci
            rows.append(row)
        out = pd.DataFrame(rows)
        order = self._summary_order()
        if order is not None:
            out["_order"] = [order.get((z, m), len(order)) for z, m in zip(out["zoo"], out["method"])]
            out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
        out.attrs["metrics"] = {k: self.metrics[k] for k in keys}
        return out

    def _summary_order(self) -> Optional[Dict[Tuple[str, str], int]]:
        path = self.path / "summary.csv"
        if not path.is_file():
            return None
        written = pd.read_csv(path)
        return {(z, m): i for i, (z, m) in enumerate(zip(written["zoo"], written["method"]))}

    def samples_as_state_dicts(self, method: str, seed: Optional[int] = None) -> Iterator[Tuple[dict, dict]]:
        """Each sample of ``method`` (of one ``seed``, or all) as ``(info, state_dict)``: the
        zoo's PyTorch parameter names and shapes, so ``model.load_state_dict(state_dict)``
        takes it as is. ``info`` holds its seed, sample index and its row of metrics. The
        weights come from ``weightlab export`` (the binary on ``PATH``, or ``$WEIGHTLAB``)."""
        from safetensors.torch import load_file

        rows = self.samples[self.samples["method"] == method]
        if rows.empty:
            raise KeyError(f"no method {method!r} in {self.path}; it has {', '.join(self.methods())}")
        with tempfile.TemporaryDirectory(prefix="weightlab-export-") as tmp:
            done = subprocess.run([_binary(), "-q", "export", str(self.path), "--method", method, "--to", tmp], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"weightlab export failed: {done.stderr.strip()}")
            files = sorted(pathlib.Path(tmp).glob("*.safetensors"))
            # `<method>-seed<S>-<NNNN>.safetensors`
            for file in files:
                stem = file.stem
                s, i = stem.rsplit("-seed", 1)[1].split("-")
                s, i = int(s), int(i)
                if seed is not None and s != seed:
                    continue
                match = rows[(rows["seed"] == s) & (rows["sample"] == i)]
                info = {"method": method, "seed": s, "sample": i, **(match.iloc[0].to_dict() if len(match) else {})}
                yield info, load_file(str(file))


def _over_seeds(values: List[float]) -> Tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t975(n - 1) * sd / math.sqrt(n)


def _binary() -> str:
    found = os.environ.get("WEIGHTLAB") or shutil.which("weightlab")
    if not found:
        raise FileNotFoundError("the weightlab binary is needed to export samples: put it on PATH or set WEIGHTLAB to its path")
    return found


def open_run(path: os.PathLike | str) -> Run:
    """Opens a run folder (``reports/<name>``, or any ``-o`` folder)."""
    return Run(path)
