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
from generator_common import arguments_and_checkpoints, mlp, normalised

rows, p, steps, _, _, weights = arguments_and_checkpoints(sys.argv)
hidden, latent = 256, 32

start = time.perf_counter()
x, mean, scale = normalised(weights)
encoder, decoder = mlp([p, hidden, hidden, latent], torch.nn.GELU), mlp([latent, hidden, hidden, p], torch.nn.GELU)
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
