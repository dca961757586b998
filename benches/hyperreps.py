"""PyTorch reference of `weightlab bench hyperreps`: Hyper-Representations' fit as the
`hyperreps` plugin runs it by default (same sizes, same operations, same optimiser), with the
same torch install.

1. normalise (per-coordinate mean, one overall scale);
2. STEPS AdamW steps (lr 1e-3, weight decay 1e-5) of the MLP autoencoder on the full batch:
   encoder [PARAMS, 256, 256, 32] and decoder [32, 256, 256, PARAMS] with GELU between layers,
   input noise 0.05, MSE to the clean checkpoints;
3. the checkpoints' latents and reconstructions (what the KDE sampler and the reconstruction
   error read).

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python hyperreps.py ROWS PARAMS STEPS; prints the seconds of the whole fit."""
import sys, time
import torch
import torch.nn.functional as F

rows, p, steps = (int(a) for a in sys.argv[1:4])
hidden, latent = 256, 32
torch.manual_seed(0)
weights = torch.randn(rows, p) * 0.05 + torch.randn(1, p)


def mlp(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i > 0:
            layers.append(torch.nn.GELU())
        layers.append(torch.nn.Linear(a, b))
    return torch.nn.Sequential(*layers)


start = time.perf_counter()
mean = weights.mean(0, keepdim=True)
centred = weights - mean
scale = centred.pow(2).mean().sqrt().clamp_min(1e-8)
x = centred / scale
encoder, decoder = mlp([p, hidden, hidden, latent]), mlp([latent, hidden, hidden, p])
opt = torch.optim.AdamW([*encoder.parameters(), *decoder.parameters()], lr=1e-3, weight_decay=1e-5, fused=True)
for step in range(steps):
    loss = F.mse_loss(decoder(encoder(x + torch.randn_like(x) * 0.05)), x)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0:
        loss.item()
with torch.no_grad():
    codes = encoder(x)
    reconstructions = decoder(codes) * scale + mean
    (reconstructions - weights).norm(dim=1).mean().item()
print(time.perf_counter() - start)
