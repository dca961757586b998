"""PyTorch side of the bring-your-own test (tests/tests/byo.rs).

    python byo_models.py make DIR     data, two zoos and their imported samples, made in PyTorch
    python byo_models.py check DIR    weightlab's checkpoints and exported samples, loaded back

`make` writes into DIR:
  data.npz                    Fashion-MNIST subset (Debian's dataset-fashion-mnist): x (N,1,28,28) in [0,1]
                              (the test images in Fortran order), y int64 (train) and int32 (test)
  zoo/lenet/model_*.safetensors, zoo/res/model_*.safetensors     models trained here
  samples/lenet/*.safetensors, samples/res/*.safetensors         permuted (exact) and noisy copies (bfloat16)
  torch.json                  test accuracy of every file in evaluation mode, and the zoo's mean
The permutations are written out by hand here, from PyTorch's module structure, so they check
weightlab's derived symmetry independently.

`check` loads every `*.safetensors` under DIR/check (strict `load_state_dict`) into the modules
below and writes DIR/check.json: test accuracy per file.
"""
import gzip, json, pathlib, sys
import numpy as np
import torch
from torch import nn
from safetensors.torch import load_file, save_file

torch.set_num_threads(2)
FMNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")


class Residual(nn.Module):
    """layers(x) + shortcut(x): weightlab's `residual` layer, with its submodule names."""

    def __init__(self, layers, shortcut=None):
        super().__init__()
        self.layers = nn.Sequential(*layers)
        if shortcut is not None:
            self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x):
        return self.layers(x) + (self.shortcut(x) if hasattr(self, "shortcut") else x)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def resnet():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        Residual([nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)],
                 [nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)]),
        nn.ReLU(),
        Residual([nn.Conv2d(16, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 16, 3, padding=1), nn.BatchNorm2d(16)]),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


BUILD = {"lenet": lenet, "res": resnet}

# Hidden-unit groups, by hand: (units, [(tensor, axis, width)]).
BN = lambda m: [(f"{m}.{t}", 0, 1) for t in ("weight", "bias", "running_mean", "running_var")]
GROUPS = {
    "lenet": [
        (6, [("0.weight", 0, 1), ("0.bias", 0, 1), *BN("1"), ("4.weight", 1, 1)]),
        (16, [("4.weight", 0, 1), ("4.bias", 0, 1), ("8.weight", 1, 25)]),
        (120, [("8.weight", 0, 1), ("8.bias", 0, 1), ("10.weight", 1, 1)]),
        (84, [("10.weight", 0, 1), ("10.bias", 0, 1), ("12.weight", 1, 1)]),
    ],
    "res": [
        (8, [("0.weight", 0, 1), ("0.bias", 0, 1), *BN("1"), ("4.layers.0.weight", 1, 1), ("4.shortcut.0.weight", 1, 1)]),
        (16, [("4.layers.0.weight", 0, 1), ("4.layers.0.bias", 0, 1), *BN("4.layers.1"), ("4.layers.3.weight", 1, 1)]),
        # The block's output, its shortcut and the second block's identity skip: one stream.
        (16, [("4.layers.3.weight", 0, 1), ("4.layers.3.bias", 0, 1), *BN("4.layers.4"), ("4.shortcut.0.weight", 0, 1), ("4.shortcut.0.bias", 0, 1), *BN("4.shortcut.1"),
              ("6.layers.0.weight", 1, 1), ("6.layers.3.weight", 0, 1), ("6.layers.3.bias", 0, 1), *BN("6.layers.4"), ("10.weight", 1, 1)]),
        (12, [("6.layers.0.weight", 0, 1), ("6.layers.0.bias", 0, 1), *BN("6.layers.1"), ("6.layers.3.weight", 1, 1)]),
    ],
}


def permute(state, kind, gen):
    out = {k: v.clone() for k, v in state.items()}
    for units, places in GROUPS[kind]:
        perm = torch.randperm(units, generator=gen)
        for name, axis, width in places:
            t = out[name]
            idx = (perm[:, None] * width + torch.arange(width)[None, :]).reshape(-1)
            out[name] = t.index_select(axis, idx)
    return out


def fashion(split, n):
    def read(name, offset):
        with gzip.open(FMNIST / name) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    prefix = "train" if split == "train" else "t10k"
    x = read(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:n].astype(np.float32) / 255.0
    y = read(f"{prefix}-labels-idx1-ubyte.gz", 8)[:n].astype(np.int64)
    return x, y


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def make(d):
    xtr, ytr = fashion("train", 3000)
    xte, yte = fashion("test", 1000)
    # As researchers' arrays come: the test images in Fortran order (a transpose, a DataFrame's
    # `.values`) and 32-bit labels; weightlab must read them as numpy does.
    np.savez(d / "data.npz", x_train=xtr, y_train=ytr, x_test=np.asfortranarray(xte), y_test=yte.astype(np.int32))
    xtr, ytr, xte, yte = map(torch.from_numpy, (xtr, ytr, xte, yte))
    report = {}
    for kind in ("lenet", "res"):
        zoo, samples = d / "zoo" / kind, d / "samples" / kind
        zoo.mkdir(parents=True)
        samples.mkdir(parents=True)
        accs = {"zoo": {}, "samples": {}}
        for seed in range(3):
            torch.manual_seed(seed)
            model = BUILD[kind]()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            model.train()
            for epoch in range(2):
                order = torch.randperm(len(xtr))
                for i in range(0, len(xtr) - 63, 64):
                    b = order[i:i + 64]
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(xtr[b]), ytr[b]).backward()
                    opt.step()
            name = f"model_{seed}.safetensors"
            state = {k: v.contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(zoo / name))
            accs["zoo"][name] = accuracy(model, xte, yte)
            gen = torch.Generator().manual_seed(100 + seed)
            permuted = permute(state, kind, gen)
            check = BUILD[kind]()
            check.load_state_dict(permuted)
            check.eval()
            model.eval()
            with torch.no_grad():
                gap = float((check(xte[:200]) - model(xte[:200])).abs().max())
            assert gap < 1e-4, f"{kind}: the hand-written permutation changed the outputs by {gap}"
            # The noisy copies in bfloat16, as a generator writing half precision would save them.
            noisy = {k: (v + 0.01 * torch.randn(v.shape, generator=gen) if "running" not in k else v).bfloat16() if v.is_floating_point() else v for k, v in state.items()}
            for tag, s in (("permuted", permuted), ("noisy", noisy)):
                fname = f"{tag}_{seed}.safetensors"
                save_file(s, str(samples / fname))
                m = BUILD[kind]()
                m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in s.items()})
                accs["samples"][fname] = accuracy(m, xte, yte)
        accs["zoo_mean"] = sum(accs["zoo"].values()) / len(accs["zoo"])
        report[kind] = accs
    (d / "torch.json").write_text(json.dumps(report, indent=1))


def check(d):
    data = np.load(d / "data.npz")
    xte, yte = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
    out = {}
    for f in sorted((d / "check").rglob("*.safetensors")):
        kind = f.parent.name
        model = BUILD[kind]()
        model.load_state_dict(load_file(str(f)))  # strict: every name and shape must match
        out[f"{kind}/{f.name}"] = accuracy(model, xte, yte)
    (d / "check.json").write_text(json.dumps(out, indent=1))


def bad(d):
    """Broken inputs, one per folder: each must be refused before anything trains."""
    x = np.zeros((8, 1, 28, 28), np.float32)
    y = np.arange(8, dtype=np.int64) % 2
    np.savez(d / "no_y_test.npz", x_train=x, y_train=y, x_test=x)
    np.savez(d / "int_x.npz", x_train=(x * 255).astype(np.uint8), y_train=y, x_test=x, y_test=y)
    state = {k: v.contiguous() for k, v in lenet().state_dict().items()}
    (d / "missing").mkdir()
    save_file({k: v for k, v in state.items() if k != "12.bias"}, str(d / "missing" / "model.safetensors"))
    (d / "pickled").mkdir()
    torch.save(state, d / "pickled" / "model.pt")
    x_nan = x.copy()
    x_nan[5, 0, 3, 4] = np.nan
    np.savez(d / "nan_x.npz", x_train=x_nan, y_train=y, x_test=x, y_test=y)
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = x[0], x[1, :, :2]
    np.savez(d / "object_x.npz", x_train=ragged, y_train=y, x_test=x, y_test=y)
    (d / "diverged").mkdir()
    save_file({k: v.clone().fill_(float("nan")) if k == "0.weight" else v for k, v in state.items()}, str(d / "diverged" / "model.safetensors"))


if __name__ == "__main__":
    {"make": make, "check": check, "bad": bad}[sys.argv[1]](pathlib.Path(sys.argv[2]))
