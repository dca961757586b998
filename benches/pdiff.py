"""PyTorch reference of `weightlab bench pdiff`: p-diff's training as the `pdiff` plugin runs it
(same sizes, same operations, same optimiser), with the same torch install.

1. the weight autoencoder (`generator_common.py`: normalise, STEPS AdamW steps of the
   1-D conv autoencoder, standardised codes);
2. STEPS AdamW steps of the latent DDPM: standardised latents, T = 1000 linear betas,
   MLP denoiser [LATENT + 32, 256, 256, LATENT] with SiLU on (z_t, sinusoidal t embedding), MSE
   on the noise.

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python pdiff.py ROWS PARAMS STEPS [CHANNELS LATENT]; prints the seconds of the whole fit."""
import sys, time
import torch
import torch.nn.functional as F
from generator_common import arguments_and_checkpoints, standardised_latents, timestep_embedding

rows, p, steps, channels, latent, weights = arguments_and_checkpoints(sys.argv)

start = time.perf_counter()
z0 = standardised_latents(weights, steps, channels, latent)
T, temb = 1000, 32
betas = torch.linspace(1e-4, 0.02, T)
ab = torch.cumprod(1 - betas, 0)
sqrt_ab, sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
denoiser = torch.nn.Sequential(torch.nn.Linear(latent + temb, 256), torch.nn.SiLU(), torch.nn.Linear(256, 256), torch.nn.SiLU(), torch.nn.Linear(256, latent))
opt = torch.optim.AdamW(denoiser.parameters(), lr=1e-3, weight_decay=2e-6, fused=True)
for step in range(steps):
    t = torch.randint(0, T, (rows,))
    eps = torch.randn(rows, latent)
    zt = z0 * sqrt_ab[t].unsqueeze(1) + eps * sqrt_1mab[t].unsqueeze(1)
    pred = denoiser(torch.cat([zt, timestep_embedding(t, temb)], 1))
    loss = F.mse_loss(pred, eps)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0:
        loss.item()
print(time.perf_counter() - start)
