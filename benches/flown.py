"""PyTorch reference of `weightlab bench flown`: FLoWN's training as the `flown` plugin runs it
on an ordinary zoo (same sizes, same operations, same optimiser), with the same torch install.

1. the weight autoencoder (`generator_common.py`: normalise, STEPS AdamW steps of the
   1-D conv autoencoder, standardised codes);
2. STEPS AdamW steps (lr 1e-3, weight decay 2e-6) of straight-line flow matching on the codes:
   x0 ~ N(0, I), t ~ U(0, 1), x_t = (1 − t) x0 + t x1, regress x1 − x0 with the velocity MLP
   [LATENT + 32 + 16, 256, 256, LATENT], SiLU, on (x_t, sinusoidal embedding of 1000 t, the
   zoo's fixed 16-d descriptor embedding); MSE.

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python flown.py ROWS PARAMS STEPS [CHANNELS LATENT]; prints the seconds of the whole fit."""
import sys, time
import torch
import torch.nn.functional as F
from generator_common import arguments_and_checkpoints, standardised_latents, timestep_embedding

rows, p, steps, channels, latent, weights = arguments_and_checkpoints(sys.argv)

start = time.perf_counter()
x1 = standardised_latents(weights, steps, channels, latent)
temb, context_dim, hidden = 32, 16, 256
descriptor = torch.randn(1, context_dim)
velocity = torch.nn.Sequential(
    torch.nn.Linear(latent + temb + context_dim, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, latent)
)
opt = torch.optim.AdamW(velocity.parameters(), lr=1e-3, weight_decay=2e-6, fused=True)
context = descriptor.expand(rows, context_dim)
for step in range(steps):
    x0 = torch.randn(rows, latent)
    t = torch.rand(rows)
    tc = t.unsqueeze(1)
    xt = x0 * (1 - tc) + x1 * tc
    pred = velocity(torch.cat([xt, timestep_embedding(t * 1000.0, temb), context], 1))
    loss = F.mse_loss(pred, x1 - x0)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0:
        loss.item()
print(time.perf_counter() - start)
