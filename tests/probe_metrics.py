"""Rescores a run's stored probe predictions (probes.parquet) with scikit-learn and SciPy and
checks every figure in probe_scores.parquet: macro mAP, top-k and argmax accuracy, R² and
Kendall's tau. Usage: probe_metrics.py RUN_DIR. Exits 1 on a mismatch."""
import sys

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.metrics import average_precision_score, r2_score

run = sys.argv[1]
preds = pd.read_parquet(f"{run}/probes.parquet")
scores = pd.read_parquet(f"{run}/probe_scores.parquet")


def matrix(g, labels):
    models = sorted(g.model.unique())
    cell = g.set_index(["model", "label"])
    truth = np.array([[cell.loc[(m, l), "truth"] for l in labels] for m in models])
    score = np.array([[cell.loc[(m, l), "prediction"] for l in labels] for m in models])
    return truth, score


def mean_ap(truth, score):
    aps = [average_precision_score(truth[:, j], score[:, j]) for j in range(truth.shape[1]) if truth[:, j].sum() > 0]
    return float(np.mean(aps)) if aps else float("nan")


def top_k(truth, score):
    accs = []
    for t, s in zip(truth, score):
        k = int(t.sum())
        if k:
            accs.append(t[np.argsort(-s, kind="stable")[:k]].sum() / k)
    return float(np.mean(accs)) if accs else float("nan")


checked, bad = 0, []
for (method, seed, target), g in preds.groupby(["method", "seed", "target"]):
    labels = list(dict.fromkeys(g.label))
    expected = {}
    if labels == [""]:
        g = g.sort_values("model")
        expected["r2"] = r2_score(g.truth, g.prediction)
        expected["kendall_tau"] = kendalltau(g.prediction, g.truth).statistic
    else:
        truth, score = matrix(g, labels)
        sets = g.drop_duplicates("label").set_index("label").label_set
        seen = [i for i, l in enumerate(labels) if sets[l] == "seen"]
        unseen = [i for i, l in enumerate(labels) if sets[l] == "unseen"]
        if target == "parent":
            expected["accuracy"] = float(np.mean(truth[np.arange(len(truth)), score.argmax(1)] == 1))
        else:
            expected["map"] = mean_ap(truth[:, seen], score[:, seen])
            expected["accuracy"] = top_k(truth[:, seen], score[:, seen])
            if unseen:
                expected["zero_shot_map"] = mean_ap(truth[:, unseen], score[:, unseen])
    mine = scores[(scores.method == method) & (scores.seed == seed) & (scores.target == target)].set_index("metric").value
    for metric, value in expected.items():
        checked += 1
        if metric not in mine or not np.isclose(mine[metric], value, atol=1e-6, equal_nan=True):
            bad.append(f"{method} seed {seed} {metric}: weightlab {mine.get(metric)} vs reference {value}")
print(f"{checked} probe figures rescored with scikit-learn / SciPy")
if bad or not checked:
    print("\n".join(bad) or "nothing was checked")
    sys.exit(1)
