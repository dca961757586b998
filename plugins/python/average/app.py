"""`average-py`: the `average` baseline in Python — each sample is the mean of k training
checkpoints chosen at random without replacement (k = 16 in Zeng et al. 2025). It makes the
same host calls in the same order as the Rust `average`, so for a seed its samples are the
same bit for bit (a test checks it)."""

import weightlab_sdk as wl


class Average(wl.Baseline):
    name = "average-py"
    version = "0.1.0"
    about = "The mean of k random training checkpoints per sample (the Rust `average`, in Python)."
    config = {
        "k": wl.Int(16, minimum=1, doc="Checkpoints averaged per sample; fewer than the training checkpoints."),
    }

    def fit(self, zoo, weights, condition, config, seed):
        rows = weights.shape[0]
        if config.k >= rows:
            raise wl.PluginError(
                f"k = {config.k} but the zoo has {rows} training checkpoints: with k ≥ {rows} every "
                f"sample is the same mean of all of them; use k < {rows}"
            )
        self.weights, self.k = weights, config.k

    def sample(self, n, seed, condition):
        rows = self.weights.shape[0]
        means = [self.weights.index_select(0, wl.Tensor.choose(rows, self.k, seed + i)).mean(0) for i in range(n)]
        return wl.Tensor.stack(means, 0)


Method = wl.export(Average)
