"""PyTorch references for `weightlab bench zoo`: train K small models on a Fashion-MNIST subset
(1) one after another (the usual per-model loop) and (2) all at once with torch.func
(functional_call + vmap over stacked parameters), with the same torch install.

Usage: python zoo.py {mlp,cnn} MODELS TRAIN EPOCHS BATCH MODE(loop|vmap) [MLP_HIDDEN]
Prints the seconds spent training (data loading excluded)."""
import gzip, sys, time
import numpy as np
import torch
from torch.func import functional_call, grad, stack_module_state

arch, models, n, epochs, batch, mode = sys.argv[1], *map(int, sys.argv[2:6]), sys.argv[6]
hidden = int(sys.argv[7]) if len(sys.argv) > 7 else 32
root = "/usr/share/datasets/fashion-mnist/"
def idx(name, offset):
    with gzip.open(root + name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)
x = torch.tensor(idx("train-images-idx3-ubyte.gz", 16)[: n * 784].reshape(n, 784), dtype=torch.float32) / 255.0
x = (x - 0.2860) / 0.3530
y = torch.tensor(idx("train-labels-idx1-ubyte.gz", 8)[:n], dtype=torch.long)

class CnnS(torch.nn.Module):
    def __init__(s):
        super().__init__()
        s.c1, s.c2, s.c3 = torch.nn.Conv2d(1, 8, 5), torch.nn.Conv2d(8, 6, 5), torch.nn.Conv2d(6, 4, 2)
        s.f1, s.f2 = torch.nn.Linear(36, 20), torch.nn.Linear(20, 10)
    def forward(s, v):
        v = v.reshape(-1, 1, 28, 28)
        v = torch.tanh(torch.max_pool2d(s.c1(v), 2)); v = torch.tanh(torch.max_pool2d(s.c2(v), 2))
        v = torch.tanh(s.c3(v)); return s.f2(torch.tanh(s.f1(v.flatten(1))))

def make():
    if arch == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    return CnnS()

steps = n // batch
start = time.perf_counter()
if mode == "loop":
    for k in range(models):
        torch.manual_seed(k)
        model = make()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            perm = torch.randperm(n)
            for s in range(steps):
                i = perm[s * batch:(s + 1) * batch]
                loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
                opt.zero_grad(); loss.backward(); opt.step()
else:
    mods = [make() for _ in range(models)]
    params, buffers = stack_module_state(mods)
    base = make().to("meta")
    def loss_fn(p, b, xb, yb):
        return torch.nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)
    g = torch.vmap(grad(loss_fn), in_dims=(0, 0, 0, 0))
    leaves = [v.detach().requires_grad_(False) for v in params.values()]
    opt = torch.optim.Adam(leaves, lr=1e-3)
    names = list(params.keys())
    for _ in range(epochs):
        perms = torch.stack([torch.randperm(n) for _ in range(models)])
        for s in range(steps):
            i = perms[:, s * batch:(s + 1) * batch]
            grads = g(dict(zip(names, leaves)), buffers, x[i], y[i])
            for leaf, name in zip(leaves, names):
                leaf.grad = grads[name]
            opt.step()
print(time.perf_counter() - start)
