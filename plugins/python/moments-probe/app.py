"""`moments-probe`: predicts a model's properties from the moments of its weights, written in
Python on the weightlab SDK.

For every weight matrix of the flat layout (a dense layer's out × in, a convolution's
out × in·k·k) it takes each output unit's row and computes the row's mean, spread and mean
absolute value, then averages and spreads those over the units: six numbers per matrix, the
same whichever order the hidden units come in (a model and its permuted copy get the same
features). Biases add their mean and spread. A linear (or one-hidden-layer) head on the
standardised features is trained with AdamW, full batch.

It is the kind of probe Unterthiner et al. 2020 ("Predicting Neural Network Accuracy from
Weights") found strong for accuracy and hyper-parameters; it cannot read which classes a model
learned as well as ProbeX, because averaging over units throws the class rows' identity away
(except in the last layer's bias, whose mean and spread it keeps)."""

import weightlab_sdk as wl


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _features(weights, layout):
    """models × features: per-matrix unit-row moments, per-bias moments."""
    models = weights.shape[0]
    parts = []
    for p in layout:
        size = _size(p.shape)
        block = weights.narrow(1, p.offset, size)
        if len(p.shape) >= 2:
            rows = block.reshape(models, p.shape[0], size // p.shape[0])
            for unit in (rows.mean(2), rows.std(2), rows.abs().mean(2)):
                parts += [unit.mean(1, keepdim=True), unit.std(1, keepdim=True)]
        elif size > 1:
            parts += [block.mean(1, keepdim=True), block.std(1, keepdim=True)]
    return wl.Tensor.cat(parts, 1)


class MomentsProbe(wl.Probe):
    name = "moments-probe"
    version = "0.1.0"
    about = "A head on permutation-invariant moments of each layer's unit rows (Unterthiner et al. 2020 style), in Python."
    config = {
        "hidden": wl.Int(0, minimum=0, doc="Width of the head's hidden layer; 0: a linear head."),
        "steps": wl.Int(400, minimum=1, doc="AdamW steps, full batch."),
        "lr": wl.Float(1e-2, minimum=0.0, doc="Learning rate."),
        "weight_decay": wl.Float(1e-3, minimum=0.0, doc="AdamW weight decay."),
    }

    def fit(self, zoo, weights, labels, target, label_embeddings, config, seed):
        if label_embeddings is not None:
            raise wl.PluginError("scores the training labels only; drop `embed_labels`")
        self.layout = zoo.layout
        x = _features(weights, self.layout)
        self.inputs = wl.Standardize(x)
        x = self.inputs(x)
        self.regression = target.kind == wl.TargetKind.REGRESSION
        self.targets = wl.Standardize(labels) if self.regression else None
        y = self.targets(labels) if self.regression else labels
        widths = [x.shape[1]] + ([config.hidden] if config.hidden else []) + [wl.outputs(target)]
        self.layers = [wl.Linear(a, b, seed + 2 * i) for i, (a, b) in enumerate(zip(widths, widths[1:]))]
        params = [p for layer in self.layers for p in layer.params()]
        loss = wl.train(params, config.steps, lambda _: wl.probe_loss(target, self._head(x), y), lr=config.lr, weight_decay=config.weight_decay)
        wl.message(f"{x.shape[1]} features from {len(self.layout)} tensors; final train loss {loss:.4f}")

    def _head(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = x.relu()
        return x

    def predict(self, weights, label_embeddings):
        out = self._head(self.inputs(_features(weights, self.layout))).detach()
        return self.targets.invert(out) if self.regression else out


Probe = wl.export(MomentsProbe)
