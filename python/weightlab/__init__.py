"""Read weightlab runs from Python.

    import weightlab as wl
    run = wl.open_run("reports/quickstart")
    run.samples                    # one row per scored model (pandas), metric columns declared
    run.summary()                  # the report's summary table, recomputed from the samples
    for info, state_dict in run.samples_as_state_dicts("p-diff"):
        model.load_state_dict(state_dict)

A run folder is what ``weightlab run`` writes: Parquet tables, ``metrics.json`` (the
declarations of the metrics the tables hold: label, unit, direction, aggregation, help) and
``summary.csv`` (the report's summary). Nothing here computes a metric: the numbers are the
engine's; this package gives them their meaning and shape.
"""

from .run import Metric, Run, open_run, t975

__all__ = ["Metric", "Run", "open_run", "t975"]
__version__ = "0.1.0"
