"""PyTorch reference of `weightlab bench pdiff`: p-diff's training as the `pdiff` plugin runs it
(same sizes, same operations, same optimiser), with the same torch install.

1. normalise (per-coordinate mean, one overall scale), pad to a multiple of 16;
2. STEPS AdamW steps (lr 1e-3, weight decay 2e-6) of the 1-D conv autoencoder on the full batch:
   four Conv1d(k=4, s=2, p=1) + SiLU, Linear to LATENT + tanh; Linear back, four
   ConvTranspose1d(k=4, s=2, p=1) with SiLU between, mean over channels; input noise 0.001,
   latent noise 0.1, MSE;
3. STEPS AdamW steps of the latent DDPM: standardised latents, T = 1000 linear betas,
   MLP denoiser [LATENT + 32, 256, 256, LATENT] with SiLU on (z_t, sinusoidal t embedding), MSE
   on the noise.

Usage: python pdiff.py ROWS PARAMS STEPS [CHANNELS LATENT]; prints the seconds of the whole fit."""
import math, sys, time
import torch
import torch.nn.functional as F

rows, p, steps = (int(a) for a in sys.argv[1:4])
channels = int(sys.argv[4]) if len(sys.argv) > 4 else 16
latent = int(sys.argv[5]) if len(sys.argv) > 5 else 64
torch.manual_seed(0)
weights = torch.randn(rows, p) * 0.05 + torch.randn(1, p)

def silu(x):
    return F.silu(x)

start = time.perf_counter()
mean = weights.mean(0, keepdim=True)
centred = weights - mean
scale = centred.pow(2).mean().sqrt().clamp_min(1e-8)
x = centred / scale
padded = (p + 15) // 16 * 16
x = torch.cat([x, torch.zeros(rows, padded - p)], 1)
reduced = padded // 16

down = torch.nn.ModuleList([torch.nn.Conv1d(1 if i == 0 else channels, channels, 4, 2, 1) for i in range(4)])
to_latent = torch.nn.Linear(channels * reduced, latent)
from_latent = torch.nn.Linear(latent, channels * reduced)
up = torch.nn.ModuleList([torch.nn.ConvTranspose1d(channels, channels, 4, 2, 1) for _ in range(4)])
ae_params = [*down.parameters(), *to_latent.parameters(), *from_latent.parameters(), *up.parameters()]

def encode(v):
    h = v.unsqueeze(1)
    for c in down:
        h = silu(c(h))
    return torch.tanh(to_latent(h.reshape(v.shape[0], -1)))

def decode(z):
    h = from_latent(z).reshape(z.shape[0], channels, reduced)
    for i, c in enumerate(up):
        h = c(h)
        if i + 1 < len(up):
            h = silu(h)
    return h.mean(1)

opt = torch.optim.AdamW(ae_params, lr=1e-3, weight_decay=2e-6)
for step in range(steps):
    z = encode(x + torch.randn(rows, padded) * 0.001)
    z = z + torch.randn_like(z) * 0.1
    loss = F.mse_loss(decode(z), x)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0:
        loss.item()

with torch.no_grad():
    codes = encode(x)
z0 = (codes - codes.mean(0, keepdim=True)) / (codes.std(0, keepdim=True) + 1e-4)
T, temb = 1000, 32
betas = torch.linspace(1e-4, 0.02, T)
ab = torch.cumprod(1 - betas, 0)
sqrt_ab, sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
denoiser = torch.nn.Sequential(torch.nn.Linear(latent + temb, 256), torch.nn.SiLU(), torch.nn.Linear(256, 256), torch.nn.SiLU(), torch.nn.Linear(256, latent))
freqs = torch.exp(-math.log(10000.0) * torch.arange(temb // 2) / (temb // 2)).reshape(1, -1)
opt = torch.optim.AdamW(denoiser.parameters(), lr=1e-3, weight_decay=2e-6)
for step in range(steps):
    t = torch.randint(0, T, (rows,))
    eps = torch.randn(rows, latent)
    zt = z0 * sqrt_ab[t].unsqueeze(1) + eps * sqrt_1mab[t].unsqueeze(1)
    args = t.float().unsqueeze(1) @ freqs
    pred = denoiser(torch.cat([zt, torch.cat([args.sin(), args.cos()], 1)], 1))
    loss = F.mse_loss(pred, eps)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0:
        loss.item()
print(time.perf_counter() - start)
