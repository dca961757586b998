"""PyTorch references for `weightlab bench zoo`: train K small models on a Fashion-MNIST subset
(1) one after another (the usual per-model loop), (2) all at once with torch.func
(functional_call + vmap over stacked parameters) and (3) hand-batched, as a PyTorch expert
writes it: parameters stacked as (K, in, out) with torch.baddbmm, CNN-s's convolutions as one
grouped convolution (groups = K), one Adam(foreach=True) over the stacked tensors, each model
with its own data order. Mode `sgemm` measures the machine's single-precision GEMM rate instead
(a 2048 x 2048 matmul, best of 10): the ceiling GFLOP/s are compared with. Same torch install.

`lenet5` is LeNet-5 with BatchNorm after its first convolution (weightlab's declared-network
test model) and `resnet-small` a small ResNet (a stem conv 8@3x3 with BatchNorm, ReLU and
max-pooling; a residual block of two conv 8@3x3 + BatchNorm with the identity shortcut; ReLU,
max-pooling; a block of two conv 16@3x3 + BatchNorm with a 1x1 conv + BatchNorm shortcut; ReLU,
global average pooling, linear 16 -> 10; convolutions without bias): the loop and the
hand-batched version (grouped convolutions, BatchNorm over the K models' channels as one
batch_norm call); vmap does not apply (BatchNorm's running statistics update in place).
`lenet5-gelu-dropout` is `lenet5` with GELU instead of ReLU in its classifier and dropout 0.2
after each of its two hidden linear layers (each model its own masks).

Usage: python zoo.py {mlp,cnn,lenet5,lenet5-gelu-dropout,resnet-small} MODELS TRAIN EPOCHS BATCH MODE(loop|vmap|batched|sgemm) [MLP_HIDDEN]
Prints the seconds spent training (data loading excluded), or GFLOP/s for `sgemm`."""
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

class Residual(torch.nn.Module):
    def __init__(s, layers, shortcut=None):
        super().__init__()
        s.layers = torch.nn.Sequential(*layers)
        s.shortcut = torch.nn.Sequential(*shortcut) if shortcut else torch.nn.Identity()
    def forward(s, v):
        return s.layers(v) + s.shortcut(v)

def make():
    nn = torch.nn
    if arch == "resnet-small":
        conv = lambda ci, co, k=3: nn.Conv2d(ci, co, k, padding=k // 2, bias=False)
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), conv(1, 8), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             Residual([conv(8, 8), nn.BatchNorm2d(8), nn.ReLU(), conv(8, 8), nn.BatchNorm2d(8)]), nn.ReLU(), nn.MaxPool2d(2),
                             Residual([conv(8, 16), nn.BatchNorm2d(16), nn.ReLU(), conv(16, 16), nn.BatchNorm2d(16)], [conv(8, 16, 1), nn.BatchNorm2d(16)]),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    if arch == "lenet5":
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if arch == "lenet5-gelu-dropout":
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.GELU(), nn.Dropout(0.2),
                             nn.Linear(120, 84), nn.GELU(), nn.Dropout(0.2), nn.Linear(84, 10))
    if arch == "mlp":
        return torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    return CnnS()

if mode == "sgemm":
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    times = []
    for _ in range(10):
        t = time.perf_counter(); a @ b; times.append(time.perf_counter() - t)
    print(2 * 2048 ** 3 / min(times) / 1e9)
    sys.exit(0)

# Library start-up (thread pools, first allocations) is not training: pay it before the clock.
_w = torch.randn(64, 64, requires_grad=True)
(_w @ _w).sum().backward()
torch.optim.Adam([_w], foreach=True).step()

steps = n // batch
start = time.perf_counter()
if mode == "batched":
    torch.manual_seed(0)
    K = models
    def stacked(*shape, fan_in):
        bound = 1.0 / fan_in ** 0.5
        return (torch.rand(K, *shape) * 2 - 1).mul_(bound).requires_grad_()
    if arch == "mlp":
        params = [stacked(784, hidden, fan_in=784), stacked(1, hidden, fan_in=784), stacked(hidden, 10, fan_in=hidden), stacked(1, 10, fan_in=hidden)]
        def forward(xb):  # xb: K x B x 784
            w1, b1, w2, b2 = params
            return torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, xb, w1)), w2)
    elif arch in ("lenet5", "lenet5-gelu-dropout"):
        ones = lambda c: torch.ones(K, c).requires_grad_()
        zeros = lambda c: torch.zeros(K, c).requires_grad_()
        params = [stacked(6, 1, 5, 5, fan_in=25), stacked(6, fan_in=25), ones(6), zeros(6), stacked(16, 6, 5, 5, fan_in=150), stacked(16, fan_in=150),
                  stacked(400, 120, fan_in=400), stacked(1, 120, fan_in=400), stacked(120, 84, fan_in=120), stacked(1, 84, fan_in=120),
                  stacked(84, 10, fan_in=84), stacked(1, 10, fan_in=84)]
        running_mean, running_var = torch.zeros(K * 6), torch.ones(K * 6)
        F = torch.nn.functional
        def forward(xb):  # grouped convolutions; BatchNorm over the K models' channels at once
            c1, c1b, g, be, c2, c2b, f1, f1b, f2, f2b, f3, f3b = params
            B = xb.shape[1]
            v = xb.transpose(0, 1).reshape(B, K, 28, 28)
            v = F.conv2d(v, c1.reshape(K * 6, 1, 5, 5), c1b.reshape(-1), padding=2, groups=K)
            v = torch.max_pool2d(torch.relu(F.batch_norm(v, running_mean, running_var, g.reshape(-1), be.reshape(-1), training=True)), 2)
            v = torch.max_pool2d(torch.relu(F.conv2d(v, c2.reshape(K * 16, 6, 5, 5), c2b.reshape(-1), groups=K)), 2)
            v = v.reshape(B, K, 400).transpose(0, 1)
            if arch == "lenet5":
                v = torch.relu(torch.baddbmm(f1b, v, f1))
                return torch.baddbmm(f3b, torch.relu(torch.baddbmm(f2b, v, f2)), f3)
            v = F.dropout(F.gelu(torch.baddbmm(f1b, v, f1)), 0.2)
            return torch.baddbmm(f3b, F.dropout(F.gelu(torch.baddbmm(f2b, v, f2)), 0.2), f3)
    elif arch == "resnet-small":
        F = torch.nn.functional
        convs = {"stem": (1, 8, 3), "a1": (8, 8, 3), "a2": (8, 8, 3), "b1": (8, 16, 3), "b2": (16, 16, 3), "bs": (8, 16, 1)}
        weights = {name: stacked(co, ci, k, k, fan_in=ci * k * k) for name, (ci, co, k) in convs.items()}
        norms = {name: (torch.ones(K, co).requires_grad_(), torch.zeros(K, co).requires_grad_(), torch.zeros(K * co), torch.ones(K * co)) for name, (_, co, _) in convs.items()}
        head = [stacked(16, 10, fan_in=16), stacked(1, 10, fan_in=16)]
        params = [*weights.values(), *(t for g, b, _, _ in norms.values() for t in (g, b)), *head]
        def cb(v, name):  # grouped convolution, then BatchNorm over the K models' channels
            ci, co, k = convs[name]
            g, b, rm, rv = norms[name]
            v = F.conv2d(v, weights[name].reshape(K * co, ci, k, k), padding=k // 2, groups=K)
            return F.batch_norm(v, rm, rv, g.reshape(-1), b.reshape(-1), training=True)
        def forward(xb):
            B = xb.shape[1]
            v = xb.transpose(0, 1).reshape(B, K, 28, 28)
            v = torch.max_pool2d(torch.relu(cb(v, "stem")), 2)
            v = torch.max_pool2d(torch.relu(cb(torch.relu(cb(v, "a1")), "a2") + v), 2)
            v = torch.relu(cb(torch.relu(cb(v, "b1")), "b2") + cb(v, "bs"))
            v = v.mean((2, 3)).reshape(B, K, 16).transpose(0, 1)
            return torch.baddbmm(head[1], v, head[0])
    else:
        params = [stacked(8, 1, 5, 5, fan_in=25), stacked(8, fan_in=25), stacked(6, 8, 5, 5, fan_in=200), stacked(6, fan_in=200),
                  stacked(4, 6, 2, 2, fan_in=24), stacked(4, fan_in=24), stacked(36, 20, fan_in=36), stacked(1, 20, fan_in=36),
                  stacked(20, 10, fan_in=20), stacked(1, 10, fan_in=20)]
        conv = torch.nn.functional.conv2d
        def forward(xb):  # xb: K x B x 784 -> one grouped convolution over the K models
            c1, c1b, c2, c2b, c3, c3b, f1, f1b, f2, f2b = params
            B = xb.shape[1]
            v = xb.transpose(0, 1).reshape(B, K, 28, 28)
            v = torch.tanh(torch.max_pool2d(conv(v, c1.reshape(K * 8, 1, 5, 5), c1b.reshape(-1), groups=K), 2))
            v = torch.tanh(torch.max_pool2d(conv(v, c2.reshape(K * 6, 8, 5, 5), c2b.reshape(-1), groups=K), 2))
            v = torch.tanh(conv(v, c3.reshape(K * 4, 6, 2, 2), c3b.reshape(-1), groups=K))
            v = v.reshape(B, K, 36).transpose(0, 1)
            return torch.baddbmm(f2b, torch.tanh(torch.baddbmm(f1b, v, f1)), f2)
    opt = torch.optim.Adam(params, lr=1e-3, foreach=True)
    for _ in range(epochs):
        perms = torch.stack([torch.randperm(n) for _ in range(models)])
        for s in range(steps):
            i = perms[:, s * batch:(s + 1) * batch]
            logits = forward(x[i])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 10), y[i].reshape(-1)) * K
            opt.zero_grad(); loss.backward(); opt.step()
elif mode == "loop":
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
elif arch in ("lenet5", "lenet5-gelu-dropout", "resnet-small"):
    print("nan")  # vmap: BatchNorm's in-place running statistics do not batch
    sys.exit(0)
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
