"""What the generator references share: their command line and synthetic checkpoints, the
normalisation of the weights (the SDK's `Normalizer`), MLPs, the sinusoidal timestep embedding,
and the weight autoencoder that p-diff and FLoWN train first (the SDK's `LatentSpace`):

1. normalise (per-coordinate mean, one overall scale), pad to a multiple of 16;
2. STEPS AdamW steps (lr 1e-3, weight decay 2e-6) of the 1-D conv autoencoder on the full batch:
   four Conv1d(k=4, s=2, p=1) + SiLU, Linear to LATENT + tanh; Linear back, four
   ConvTranspose1d(k=4, s=2, p=1) with SiLU between, mean over channels (one convolution with
   the last layer's weights averaged over its outputs, as the SDK); input noise 0.001,
   latent noise 0.1, MSE;
3. the training checkpoints' codes, standardised: what the second stage learns."""
import torch
import torch.nn.functional as F


def warm_up():
    """Pays PyTorch's one-time costs before a reference starts its clock: the first optimiser
    a process builds imports some 860 modules (torch._dynamo and friends), 0.7 s on a Xeon,
    which is start-up, not training. The plugin's side runs in a process that has paid its own."""
    w = torch.zeros(1, requires_grad=True)
    w.sum().backward()
    torch.optim.AdamW([w], fused=True).step()


def arguments_and_checkpoints(argv):
    """ROWS PARAMS STEPS [CHANNELS LATENT] from the command line, and ROWS synthetic
    checkpoints (seeded): what the references start from. Warms PyTorch up (`warm_up`)."""
    warm_up()
    rows, p, steps = (int(a) for a in argv[1:4])
    channels = int(argv[4]) if len(argv) > 4 else 16
    latent = int(argv[5]) if len(argv) > 5 else 64
    torch.manual_seed(0)
    return rows, p, steps, channels, latent, torch.randn(rows, p) * 0.05 + torch.randn(1, p)


def normalised(weights):
    """(x, mean, scale): the weights less their per-coordinate mean, over one overall scale."""
    mean = weights.mean(0, keepdim=True)
    centred = weights - mean
    scale = centred.pow(2).mean().sqrt().clamp_min(1e-8)
    return centred / scale, mean, scale


def mlp(sizes, activation):
    """Linear layers of `sizes` with `activation` (a module class) between them, as the SDK's `Mlp`."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i > 0:
            layers.append(activation())
        layers.append(torch.nn.Linear(a, b))
    return torch.nn.Sequential(*layers)


def standardised_latents(weights, steps, channels, latent):
    rows, p = weights.shape
    x, _, _ = normalised(weights)
    padded = (p + 15) // 16 * 16
    x = torch.cat([x, torch.zeros(rows, padded - p)], 1)
    reduced = padded // 16

    down = torch.nn.ModuleList([torch.nn.Conv1d(1 if i == 0 else channels, channels, 4, 2, 1) for i in range(4)])
    to_latent = torch.nn.Linear(channels * reduced, latent)
    from_latent = torch.nn.Linear(latent, channels * reduced)
    up = torch.nn.ModuleList([torch.nn.ConvTranspose1d(channels, channels, 4, 2, 1) for _ in range(4)])
    params = [*down.parameters(), *to_latent.parameters(), *from_latent.parameters(), *up.parameters()]

    def encode(v):
        h = v.unsqueeze(1)
        for c in down:
            h = F.silu(c(h))
        return torch.tanh(to_latent(h.reshape(v.shape[0], -1)))

    def decode(z):
        h = from_latent(z).reshape(z.shape[0], channels, reduced)
        for c in up[:-1]:
            h = F.silu(c(h))
        # The mean of the last layer's outputs, as the SDK computes it: one transposed
        # convolution with the weights and bias averaged over the outputs (the same function).
        last = up[-1]
        return F.conv_transpose1d(h, last.weight.mean(1, keepdim=True), last.bias.mean(0, keepdim=True), 2, 1).squeeze(1)

    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=2e-6, fused=True)
    for step in range(steps):
        z = encode(x + torch.randn(rows, padded) * 0.001)
        z = z + torch.randn_like(z) * 0.1
        loss = F.mse_loss(decode(z), x)
        opt.zero_grad(); loss.backward(); opt.step()
        if step % 50 == 0:
            loss.item()

    with torch.no_grad():
        codes = encode(x)
    return (codes - codes.mean(0, keepdim=True)) / (codes.std(0, keepdim=True) + 1e-4)


def timestep_embedding(t, dim):
    """Sinusoidal embedding of (float) timesteps: sin and cos of t at dim / 2 frequencies."""
    import math
    freqs = torch.exp(-math.log(10000.0) * torch.arange(dim // 2) / (dim // 2)).reshape(1, -1)
    args = t.float().unsqueeze(1) @ freqs
    return torch.cat([args.sin(), args.cos()], 1)
