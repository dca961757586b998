"""PyTorch reference of `weightlab bench d2nwg`: D2NWG's fit as the `d2nwg` plugin runs it with
its defaults (same sizes, same operations, same optimiser), with the same torch install.

1. normalise (per-coordinate mean, one overall scale);
2. STEPS AdamW steps (lr 1e-3, weight decay 2e-6) of the weight VAE on the full batch: encoder
   [PARAMS, 256, 2·16] and decoder [16, 256, PARAMS] with SiLU, the log-variance offset by −6 and
   capped at 2 ln 0.1, a reparameterised draw, MSE + 1e-4 × KL annealed over the first half;
3. the posterior means, standardised, and STEPS AdamW steps of the latent DDPM (T = 200 linear
   betas, ε-prediction): a set encoder [64, 256, 32] on each checkpoint's task condition (its
   support set's encoding, standardised; 10 synthetic tasks here) and the denoiser
   [16 + 32 + 32, 256, 256, 16] with SiLU on (z_t, sinusoidal t embedding, the encoded
   condition), trained together; MSE on the noise.

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python d2nwg.py ROWS PARAMS STEPS; prints the seconds of the whole fit."""
import math, sys, time
import torch
import torch.nn.functional as F
from generator_common import arguments_and_checkpoints, mlp, normalised, timestep_embedding

rows, p, steps, _, _, weights = arguments_and_checkpoints(sys.argv)
hidden, latent, context, support_dim, tasks, T = 256, 16, 32, 64, 10, 200
support = torch.randn(tasks, support_dim)[torch.arange(rows) % tasks]
silu = torch.nn.SiLU

start = time.perf_counter()
x, _, _ = normalised(weights)
encoder, decoder = mlp([p, hidden, 2 * latent], silu), mlp([latent, hidden, p], silu)
opt = torch.optim.AdamW([*encoder.parameters(), *decoder.parameters()], lr=1e-3, weight_decay=2e-6, fused=True)
for step in range(steps):
    h = encoder(x)
    mu, logvar = h[:, :latent], (h[:, latent:] - 6.0).clamp(-12.0, 2.0 * math.log(0.1))
    z = mu + (0.5 * logvar).exp() * torch.randn(rows, latent)
    recon = F.mse_loss(decoder(z), x)
    kl = (0.5 * (mu.square() + logvar.exp() - logvar) - 0.5).mean()
    loss = recon + kl * (1e-4 * min(2.0 * step / steps, 1.0))
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0:
        recon.item(); kl.item()
with torch.no_grad():
    codes = encoder(x)[:, :latent]
z0 = (codes - codes.mean(0, keepdim=True)) / (codes.std(0, keepdim=True) + 1e-4)
condition = (support - support.mean(0, keepdim=True)) / support.std(0, keepdim=True).clamp_min(1e-6)
betas = torch.linspace(1e-4, 0.02, T)
ab = torch.cumprod(1 - betas, 0)
sqrt_ab, sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
denoiser, set_encoder = mlp([latent + 32 + context, hidden, hidden, latent], silu), mlp([support_dim, hidden, context], silu)
opt = torch.optim.AdamW([*denoiser.parameters(), *set_encoder.parameters()], lr=1e-3, weight_decay=2e-6, fused=True)
for step in range(steps):
    t = torch.randint(0, T, (rows,))
    eps = torch.randn(rows, latent)
    zt = z0 * sqrt_ab[t].unsqueeze(1) + eps * sqrt_1mab[t].unsqueeze(1)
    pred = denoiser(torch.cat([zt, timestep_embedding(t, 32), set_encoder(condition)], 1))
    loss = F.mse_loss(pred, eps)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0:
        loss.item()
print(time.perf_counter() - start)
