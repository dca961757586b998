"""PyTorch reference of `weightlab bench diffusion`: the weight-space DDPM that the
`hyperdiffusion` and `gpt` plugins train (`WeightDiffusion` of the Rust SDK), with the same sizes,
operations and optimiser, on the same torch install.

1. normalise (per-coordinate mean, one overall scale) and cut the flat vector into tokens of
   TOKEN weights (the last one padded with zeros);
2. STEPS AdamW steps (weight decay 1e-5, lr 1e-3 decayed to 0 on a cosine) on minibatches of
   BATCH checkpoints: DDPM noising at a random timestep of T = 500 (linear betas 1e-4 → 0.02);
   the denoiser — a linear encoder per token, a learned position embedding, an MLP on the
   sinusoidal timestep embedding (64 → DIM → DIM, SiLU), DEPTH pre-norm transformer blocks
   (HEADS-head attention, MLP DIM → 4·DIM → DIM with GELU), a final layer norm and a linear
   decoder per token — predicts the clean weights; MSE.

G.pt adds an MLP on its scalar condition (1 → DIM → DIM); HyperDiffusion has none, as here.

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python diffusion.py ROWS PARAMS STEPS [TOKEN DIM DEPTH HEADS BATCH]; prints the seconds
of the whole fit."""
import math, sys, time
import torch
import torch.nn.functional as F
from generator_common import warm_up

rows, p, steps = (int(a) for a in sys.argv[1:4])
token, dim, depth, heads, batch = (int(a) for a in (sys.argv[4:9] if len(sys.argv) > 8 else (64, 128, 2, 4, 64)))
warm_up()
torch.manual_seed(0)
weights = torch.randn(rows, p) * 0.05 + torch.randn(1, p)
T, time_dim = 500, 64


class TokenLinear(torch.nn.Module):
    """One linear map per token: (N × tokens × inputs) → (N × tokens × outputs)."""

    def __init__(self, tokens, inputs, outputs):
        super().__init__()
        bound = 1 / math.sqrt(inputs)
        self.weight = torch.nn.Parameter(torch.empty(tokens, inputs, outputs).uniform_(-bound, bound))
        self.bias = torch.nn.Parameter(torch.empty(tokens, outputs).uniform_(-bound, bound))

    def forward(self, x):
        return (x.transpose(0, 1) @ self.weight).transpose(0, 1) + self.bias.unsqueeze(0)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.fc1, self.fc2 = torch.nn.Linear(dim, 4 * dim), torch.nn.Linear(4 * dim, dim)

    def attention(self, x):
        n, l, d = x.shape
        qkv = self.qkv(x).reshape(n, l, 3, heads, d // heads)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        return self.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, l, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


start = time.perf_counter()
mean = weights.mean(0, keepdim=True)
centred = weights - mean
scale = centred.pow(2).mean().sqrt().clamp_min(1e-8)
x = centred / scale
tokens = (p + token - 1) // token
x = torch.cat([x, torch.zeros(rows, tokens * token - p)], 1)

embed, head = TokenLinear(tokens, token, dim), TokenLinear(tokens, dim, token)
position = torch.nn.Parameter(torch.randn(tokens, dim) * 0.02)
time_mlp = torch.nn.Sequential(torch.nn.Linear(time_dim, dim), torch.nn.SiLU(), torch.nn.Linear(dim, dim))
blocks = torch.nn.ModuleList([Block() for _ in range(depth)])
final = torch.nn.LayerNorm(dim)
params = [*embed.parameters(), position, *time_mlp.parameters(), *blocks.parameters(), *final.parameters(), *head.parameters()]
freqs = torch.exp(-math.log(10000.0) * torch.arange(time_dim // 2) / (time_dim // 2)).reshape(1, -1)


def denoise(xt, t):
    n = xt.shape[0]
    args = t.float().unsqueeze(1) @ freqs
    extra = time_mlp(torch.cat([args.sin(), args.cos()], 1))
    h = embed(xt.reshape(n, tokens, token)) + position.unsqueeze(0) + extra.unsqueeze(1)
    for b in blocks:
        h = b(h)
    return head(final(h)).reshape(n, -1)


betas = torch.linspace(1e-4, 0.02, T)
ab = torch.cumprod(1 - betas, 0)
sqrt_ab, sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-5, fused=True)
for step in range(steps):
    xb = x[torch.randperm(rows)[:batch]] if rows > batch else x
    t = torch.randint(0, T, (xb.shape[0],))
    eps = torch.randn_like(xb)
    xt = xb * sqrt_ab[t].unsqueeze(1) + eps * sqrt_1mab[t].unsqueeze(1)
    loss = F.mse_loss(denoise(xt, t), xb)
    for group in opt.param_groups:
        group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 50 == 0 or step + 1 == steps:
        loss.item()
print(time.perf_counter() - start)
