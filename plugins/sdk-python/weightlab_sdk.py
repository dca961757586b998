"""weightlab_sdk: write weightlab plugins in Python.

A plugin is one Python module built into a WebAssembly component by componentize-py
(`weightlab plugin build <folder>`). Tensors live in the host (libtorch): a `Tensor` here is a
handle, and every operation on it is one call into the host, so the arithmetic runs natively
and only handles and small values cross the boundary (about 2 microseconds a call).

A plugin subclasses one role, declares its name, version and config, and exports the class:

    import weightlab_sdk as wl

    class Shrink(wl.Baseline):
        name = "shrink"
        version = "0.1.0"
        about = "Training checkpoints pulled towards their mean."
        config = {"alpha": wl.Float(0.5, minimum=0.0, maximum=1.0, doc="How far to pull.")}

        def fit(self, zoo, weights, condition, config, seed):
            self.weights, self.mean, self.alpha = weights, weights.mean(0, keepdim=True), config.alpha

        def sample(self, n, seed, condition):
            rows = wl.Tensor.randint(self.weights.shape[0], n, seed)
            picked = self.weights.index_select(0, rows)
            return picked + (self.mean - picked) * self.alpha

    Method = wl.export(Shrink)

Raise `wl.PluginError("reason")` (or any exception) from `fit`, `sample` or `predict` to fail
the method with that reason; the rest of the experiment goes on. The author's guide is
docs/src/plugins.md in the weightlab repository.
"""

import json
import traceback
from types import SimpleNamespace

from componentize_py_types import Err
from wit_world.imports import log as _log
from wit_world.imports import tensors as _t
from wit_world.imports import types as _types
from wit_world.imports import zoo as _zoo

__all__ = [
    "Tensor", "Optimizer", "PluginError", "Baseline", "Generator", "Probe", "Condition",
    "Int", "Float", "Bool", "Str", "Choice", "List", "export", "metric", "message", "progress",
    "Linear", "Standardize", "train", "outputs", "probe_loss", "TargetKind",
]

U64 = 1 << 64


class PluginError(Exception):
    """A failure with a reason the user should read (the method is reported as failed)."""


# ---------------------------------------------------------------------------------------------
# Tensors


def _raw(x):
    return x._raw if isinstance(x, Tensor) else x


def _dims(shape):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return [int(d) for d in shape]


class Tensor:
    """A host tensor of 32-bit floats. Operators broadcast as in PyTorch; a Python number on
    either side of `+ - * /` is applied as a scalar."""

    __slots__ = ("_raw",)

    def __init__(self, raw):
        self._raw = raw

    # ---- creation ----
    @staticmethod
    def zeros(*shape):
        return Tensor(_t.Tensor.zeros(_dims(shape)))

    @staticmethod
    def full(shape, value):
        return Tensor(_t.Tensor.full(_dims(shape), float(value)))

    @staticmethod
    def scalar(value):
        return Tensor(_t.Tensor.full([], float(value)))

    @staticmethod
    def from_list(data, shape=None):
        data = [float(v) for v in data]
        return Tensor(_t.Tensor.from_list(data, _dims(shape if shape is not None else [len(data)])))

    @staticmethod
    def randn(shape, seed):
        return Tensor(_t.Tensor.randn(_dims(shape), int(seed) % U64))

    @staticmethod
    def rand(shape, seed):
        return Tensor(_t.Tensor.rand(_dims(shape), int(seed) % U64))

    @staticmethod
    def randperm(n, seed):
        return Tensor(_t.Tensor.randperm(int(n), int(seed) % U64))

    @staticmethod
    def choose(n, k, seed):
        """`k` distinct whole numbers of 0 .. n-1 (the first k of a seeded permutation): the
        same as the Rust SDK's `Tensor::choose`, so a port draws the same rows."""
        return Tensor.randperm(n, seed).narrow(0, 0, min(k, n))

    @staticmethod
    def randint(n, count, seed):
        """`count` whole numbers drawn uniformly from 0 .. n-1 (with replacement)."""
        return (Tensor.rand([count], seed) * float(n)).floor().clamp(0.0, float(n - 1))

    @staticmethod
    def arange(n):
        return Tensor(_t.Tensor.arange(int(n)))

    @staticmethod
    def cat(parts, dim=0):
        return Tensor(_t.Tensor.cat([p._raw for p in parts], dim))

    @staticmethod
    def stack(parts, dim=0):
        return Tensor(_t.Tensor.stack([p._raw for p in parts], dim))

    # ---- inspection ----
    @property
    def shape(self):
        return tuple(self._raw.shape())

    def tolist(self):
        """All values, row-major, as a flat list (copies: for small results only)."""
        return self._raw.to_list()

    def item(self):
        return self._raw.item()

    def __repr__(self):
        return f"Tensor{list(self.shape)}"

    # ---- elementwise ----
    def _binary(self, other, op, scalar):
        if isinstance(other, Tensor):
            return Tensor(getattr(self._raw, op)(other._raw))
        return Tensor(scalar(float(other)))

    def __add__(self, other):
        return self._binary(other, "add", lambda v: self._raw.affine(1.0, v))

    __radd__ = __add__

    def __sub__(self, other):
        return self._binary(other, "sub", lambda v: self._raw.affine(1.0, -v))

    def __rsub__(self, other):
        return Tensor(self._raw.affine(-1.0, float(other)))

    def __mul__(self, other):
        return self._binary(other, "mul", lambda v: self._raw.affine(v, 0.0))

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._binary(other, "div", lambda v: self._raw.affine(1.0 / v, 0.0))

    def __rtruediv__(self, other):
        return Tensor.full(self.shape, float(other)) / self

    def __neg__(self):
        return Tensor(self._raw.affine(-1.0, 0.0))

    def __pow__(self, exponent):
        return Tensor(self._raw.pow(float(exponent)))

    def __matmul__(self, other):
        return Tensor(self._raw.matmul(other._raw))

    def __gt__(self, other):
        other = other if isinstance(other, Tensor) else Tensor.scalar(other)
        return Tensor(self._raw.greater(other._raw))

    def __lt__(self, other):
        other = other if isinstance(other, Tensor) else Tensor.scalar(other)
        return Tensor(other._raw.greater(self._raw))

    def affine(self, a, b):
        """self * a + b in one host call."""
        return Tensor(self._raw.affine(float(a), float(b)))

    def clamp(self, lo, hi):
        return Tensor(self._raw.clamp(float(lo), float(hi)))

    def _unary(self, f):
        return Tensor(self._raw.apply(f))

    def exp(self):
        return self._unary(_t.Unary.EXP)

    def log(self):
        return self._unary(_t.Unary.LOG)

    def sqrt(self):
        return self._unary(_t.Unary.SQRT)

    def abs(self):
        return self._unary(_t.Unary.ABS)

    def square(self):
        return self._unary(_t.Unary.SQUARE)

    def sin(self):
        return self._unary(_t.Unary.SIN)

    def cos(self):
        return self._unary(_t.Unary.COS)

    def floor(self):
        return self._unary(_t.Unary.FLOOR)

    def tanh(self):
        return self._unary(_t.Unary.TANH)

    def sigmoid(self):
        return self._unary(_t.Unary.SIGMOID)

    def relu(self):
        return self._unary(_t.Unary.RELU)

    def gelu(self):
        return self._unary(_t.Unary.GELU)

    def silu(self):
        return self._unary(_t.Unary.SILU)

    # ---- reductions (dim=None: over every element, a scalar) ----
    def sum(self, dim=None, keepdim=False):
        return Tensor(self._raw.sum_all() if dim is None else self._raw.sum(dim, keepdim))

    def mean(self, dim=None, keepdim=False):
        return Tensor(self._raw.mean_all() if dim is None else self._raw.mean(dim, keepdim))

    def std(self, dim, keepdim=False):
        """Unbiased standard deviation along `dim`."""
        return Tensor(self._raw.std(dim, keepdim))

    def max(self, dim, keepdim=False):
        return Tensor(self._raw.max(dim, keepdim))

    def min(self, dim, keepdim=False):
        return Tensor(self._raw.min(dim, keepdim))

    def argmax(self, dim):
        return Tensor(self._raw.argmax(dim))

    # ---- shape ----
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = shape[0]
        return Tensor(self._raw.reshape([int(d) for d in shape]))

    def transpose(self, dim0, dim1):
        return Tensor(self._raw.transpose(dim0, dim1))

    @property
    def T(self):
        return self.transpose(-2, -1)

    def narrow(self, dim, start, length):
        return Tensor(self._raw.narrow(dim, start, length))

    def index_select(self, dim, index):
        return Tensor(self._raw.index_select(dim, index._raw))

    def unsqueeze(self, dim):
        return Tensor(self._raw.unsqueeze(dim))

    def expand(self, *shape):
        return Tensor(self._raw.expand(_dims(shape)))

    # ---- neural-network functions ----
    def softmax(self, dim):
        return Tensor(self._raw.softmax(dim))

    def log_softmax(self, dim):
        return Tensor(self._raw.log_softmax(dim))

    def mse(self, target):
        return Tensor(self._raw.mse(target._raw))

    def cross_entropy(self, targets):
        return Tensor(self._raw.cross_entropy(targets._raw))

    def linear(self, weight, bias=None):
        return Tensor(self._raw.linear(weight._raw, _raw(bias)))

    def layer_norm(self, weight=None, bias=None, eps=1e-5):
        return Tensor(self._raw.layer_norm(_raw(weight), _raw(bias), float(eps)))

    def conv1d(self, weight, bias=None, stride=1, padding=0):
        return Tensor(self._raw.conv1d(weight._raw, _raw(bias), stride, padding))

    def conv_transpose1d(self, weight, bias=None, stride=1, padding=0, output_padding=0):
        return Tensor(self._raw.conv_transpose1d(weight._raw, _raw(bias), stride, padding, output_padding))

    def attention(self, key, value, causal=False):
        return Tensor(self._raw.attention(key._raw, value._raw, causal))

    def embedding(self, indices):
        return Tensor(self._raw.embedding(indices._raw))

    # ---- autodiff ----
    def parameter(self):
        """A leaf copy that records gradients."""
        return Tensor(self._raw.parameter())

    def detach(self):
        return Tensor(self._raw.detach())

    def backward(self):
        self._raw.backward()

    @property
    def grad(self):
        g = self._raw.grad()
        return None if g is None else Tensor(g)


class Optimizer:
    """An optimiser in the host over tensors made by `Tensor.parameter()`."""

    def __init__(self, kind, params, lr, weight_decay=0.0):
        kinds = {"sgd": _t.OptimizerKind.SGD, "adam": _t.OptimizerKind.ADAM, "adamw": _t.OptimizerKind.ADAMW}
        if kind not in kinds:
            raise PluginError(f"optimizer `{kind}`: use one of {', '.join(kinds)}")
        self._raw = _t.Optimizer(kinds[kind], [p._raw for p in params], float(lr), float(weight_decay))

    def step(self):
        self._raw.step()

    def zero_grad(self):
        self._raw.zero_grad()

    def set_lr(self, lr):
        self._raw.set_lr(float(lr))


# ---------------------------------------------------------------------------------------------
# Layers and training helpers


class Linear:
    """A dense layer `x @ weightᵀ + bias` with PyTorch's default initialisation (uniform in
    ±1/sqrt(inputs)), its tensors made trainable."""

    def __init__(self, inputs, outputs, seed):
        bound = 1.0 / (inputs ** 0.5)
        self.weight = Tensor.rand([outputs, inputs], seed).affine(2 * bound, -bound).parameter()
        self.bias = Tensor.rand([outputs], seed + 1).affine(2 * bound, -bound).parameter()

    def __call__(self, x):
        return x.linear(self.weight, self.bias)

    def params(self):
        return [self.weight, self.bias]


class Standardize:
    """Per-column standardisation fitted on training rows (columns with no spread are centred)."""

    def __init__(self, x):
        self.mean = x.mean(0, keepdim=True)
        self.std = x.std(0, keepdim=True).clamp(1e-6, 3.0e38) if x.shape[0] > 1 else Tensor.full(self.mean.shape, 1.0)

    def __call__(self, x):
        return (x - self.mean) / self.std

    def invert(self, x):
        return x * self.std + self.mean


def train(params, steps, loss_fn, lr=1e-2, weight_decay=0.0, kind="adamw"):
    """Minimises `loss_fn(step)` (a scalar Tensor) over `params` for `steps` full-batch steps;
    reports progress and logs the loss every tenth of the way. Returns the last loss."""
    opt = Optimizer(kind, params, lr, weight_decay)
    last = float("nan")
    for step in range(steps):
        opt.zero_grad()
        loss = loss_fn(step)
        loss.backward()
        opt.step()
        if step == steps - 1 or step % max(1, steps // 10) == 0:
            last = loss.item()
            metric("train-loss", step, last)
            progress(step + 1, steps)
    return last


def outputs(target):
    """Output columns a probe's head needs for `target`: one per label, or one value."""
    return 1 if target.kind == TargetKind.REGRESSION else len(target.labels)


def probe_loss(target, out, labels):
    """Mean loss of `out` against `labels` for the target's kind: binary cross-entropy on logits
    (multi-label), cross-entropy (single-label, labels holding indices), squared error."""
    if target.kind == TargetKind.MULTI_LABEL:
        # log(1 + e^x) - x*y, computed stably as relu(x) + log(1 + e^-|x|) - x*y
        return (out.relu() + (-out.abs()).exp().affine(1.0, 1.0).log() - out * labels).mean()
    if target.kind == TargetKind.SINGLE_LABEL:
        return out.cross_entropy(labels.reshape(-1))
    return out.mse(labels)


# ---------------------------------------------------------------------------------------------
# Logging: lands in the run's tables and report.


def metric(name, step, value):
    """A scalar at a step, e.g. metric("loss", 100, 0.03)."""
    _log.metric(name, int(step), float(value))


def message(text):
    _log.message(str(text))


def progress(done, total):
    """Progress of the current call, shown in the run's progress bar."""
    _log.progress(int(done), int(total))


# ---------------------------------------------------------------------------------------------
# Config: declared fields give the JSON Schema the host checks and the object `fit` receives.


class _Field:
    json_type = None

    def __init__(self, default=None, doc=None, **bounds):
        self.default, self.doc, self.bounds = default, doc, bounds

    def schema(self):
        s = {"type": self.json_type}
        if self.doc:
            s["description"] = self.doc
        if self.default is not None:
            s["default"] = self.default
        s.update(self.bounds)
        return s

    def parse(self, key, value):
        return value


class Int(_Field):
    """A whole number; `minimum=`/`maximum=` bound it."""

    json_type = "integer"

    def parse(self, key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise PluginError(f"config `{key}`: expected a whole number, got {value!r}")
        return int(value)


class Float(_Field):
    """A number; `minimum=`/`maximum=` bound it."""

    json_type = "number"

    def parse(self, key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PluginError(f"config `{key}`: expected a number, got {value!r}")
        return float(value)


class Bool(_Field):
    json_type = "boolean"


class Str(_Field):
    json_type = "string"


class Choice(_Field):
    """One of a fixed set of strings."""

    json_type = "string"

    def __init__(self, choices, default=None, doc=None):
        super().__init__(default, doc, enum=list(choices))


class List(_Field):
    """A list of `item` fields' values (e.g. hidden widths: `List(Int(), [64, 64])`)."""

    json_type = "array"

    def __init__(self, item, default=None, doc=None):
        super().__init__(default, doc)
        self.item = item

    def schema(self):
        s = super().schema()
        s["items"] = {k: v for k, v in self.item.schema().items() if k != "default"}
        return s

    def parse(self, key, value):
        return [self.item.parse(f"{key}[{i}]", v) for i, v in enumerate(value)]


def config_schema(fields):
    """The JSON Schema of a config declared as {key: field}."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {k: f.schema() for k, f in fields.items()},
        "required": [k for k, f in fields.items() if f.default is None],
        "additionalProperties": False,
    }


def parse_config(fields, text):
    """The config JSON as an object with one attribute per field (defaults filled in)."""
    given = json.loads(text) if text else {}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise PluginError(f"config: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields) or 'none'}")
    values = {}
    for key, field in fields.items():
        if key in given:
            values[key] = field.parse(key, given[key])
        elif field.default is None:
            raise PluginError(f"config: `{key}` is required")
        else:
            values[key] = field.default
    return SimpleNamespace(**values)


# ---------------------------------------------------------------------------------------------
# Roles


class Condition:
    """What a task is, for conditional generators: `task` (its id or None), `support` (set
    encoding, rows × features) and `instruction` (text embedding, rows × 384), each a Tensor or
    None. Empty when the zoo's data is not a task family."""

    def __init__(self, raw):
        self.task = raw.task
        self.support = None if raw.support is None else Tensor(raw.support.detach())
        self.instruction = None if raw.instruction is None else Tensor(raw.instruction.detach())


class _Plugin:
    name = None
    version = "0.1.0"
    about = ""
    config = {}
    role = None

    @classmethod
    def _description(cls):
        if not cls.name:
            raise PluginError(f"class {cls.__name__} sets no `name`")
        schema = json.dumps(config_schema(cls.config))
        return _types.Description(name=cls.name, version=cls.version, role=cls.role, about=cls.about, config_schema=schema)


class Baseline(_Plugin):
    """A baseline: learn from the training checkpoints, sample new weights.

    Override `fit(self, zoo, weights, condition, config, seed)` (weights: checkpoints ×
    parameters; zoo: the WIT `zoo-info` record; config: an object with the declared fields) and
    `sample(self, n, seed, condition) -> Tensor` (n × zoo.parameters)."""

    role = _types.Role.BASELINE

    def check(self, zoo, config):
        """The mistakes in `config` for the zoo `fit` will get, found before anything trains:
        a list of `(key, message)` pairs (key None for the config as a whole). `zoo` is the WIT
        `zoo-plan` record: `zoo.checkpoints` (None when unknown before training),
        `zoo.layout`, `zoo.classes`, `zoo.task_family`. Default: none."""
        return []

    def fit(self, zoo, weights, condition, config, seed):
        raise PluginError("fit is not implemented")

    def sample(self, n, seed, condition):
        raise PluginError("sample is not implemented")


class Generator(Baseline):
    """A generative model of weights; the same calls as `Baseline`."""

    role = _types.Role.GENERATOR


class Probe(_Plugin):
    """A probe: predict a property of models from their weights.

    Override `fit(self, zoo, weights, labels, target, label_embeddings, config, seed)` (labels:
    models × labels for multi-label, models × 1 otherwise; target.kind is a
    `TargetKind`) and `predict(self, weights, label_embeddings) -> Tensor` (models × labels, or
    models × 1 for regression)."""

    role = _types.Role.PROBE

    def check(self, zoo, target, config):
        """The mistakes in `config` for this zoo and target, before anything trains (as
        `Baseline.check`). Default: none."""
        return []

    def fit(self, zoo, weights, labels, target, label_embeddings, config, seed):
        raise PluginError("fit is not implemented")

    def predict(self, weights, label_embeddings):
        raise PluginError("predict is not implemented")


def _reason(e):
    if isinstance(e, PluginError):
        return str(e)
    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(e).__name__}: {e}{where}"


def _guarded(call):
    """Runs `call`, turning any exception into the WIT `result`'s error string."""
    try:
        return call()
    except Err:
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes the method's reason
        raise Err(_reason(e))


def _checked(cls, config, call):
    """The WIT problems of a plugin's `check` (`call` gets the parsed config); a config that
    does not parse, or a `check` that raises, is one problem with the whole config."""
    try:
        found = call(cls(), parse_config(cls.config, config)) or []
        return [_zoo.Problem(key=None if key is None else str(key), message=str(message)) for key, message in found]
    except Exception as e:  # noqa: BLE001 - a broken check is reported, not fatal
        return [_zoo.Problem(key=None, message=_reason(e))]


def _state(holder, call):
    if holder.plugin is None:
        raise Err(f"{call} called before fit")
    return holder.plugin


def export(cls):
    """The class componentize-py exports for `cls`: assign it to `Method` (generators and
    baselines) or `Probe` (probes) at the end of the plugin module."""
    if issubclass(cls, Probe):
        from wit_world import exports

        class _Probe(exports.Probe):
            plugin = None

            def describe(self):
                return cls._description()

            def check(self, zoo, target, config):
                return _checked(cls, config, lambda plugin, parsed: plugin.check(zoo, target, parsed))

            def fit(self, zoo, weights, labels, target, label_embeddings, config, seed):
                def run():
                    plugin = cls()
                    emb = None if label_embeddings is None else Tensor(label_embeddings.detach())
                    plugin.fit(zoo, Tensor(weights.detach()), Tensor(labels.detach()), target, emb, parse_config(cls.config, config), seed)
                    _Probe.plugin = plugin

                _guarded(run)

            def predict(self, weights, label_embeddings):
                plugin = _state(_Probe, "predict")
                emb = None if label_embeddings is None else Tensor(label_embeddings.detach())
                out = _guarded(lambda: plugin.predict(Tensor(weights.detach()), emb))
                return _returned(out, "predict")

        return _Probe

    from wit_world import exports

    class _Method(exports.Method):
        plugin = None

        def describe(self):
            return cls._description()

        def check(self, zoo, config):
            return _checked(cls, config, lambda plugin, parsed: plugin.check(zoo, parsed))

        def fit(self, zoo, weights, condition, config, seed):
            def run():
                plugin = cls()
                plugin.fit(zoo, Tensor(weights.detach()), Condition(condition), parse_config(cls.config, config), seed)
                _Method.plugin = plugin

            _guarded(run)

        def sample(self, n, seed, condition):
            plugin = _state(_Method, "sample")
            out = _guarded(lambda: plugin.sample(n, seed, Condition(condition)))
            return _returned(out, "sample")

    return _Method


def _returned(out, call):
    if not isinstance(out, Tensor):
        raise Err(f"{call} returned {type(out).__name__}, not a Tensor")
    return out._raw


TargetKind = None
try:  # the probe world only
    from wit_world.exports.probe import TargetKind  # noqa: F811
except ImportError:
    pass
