"""PyTorch reference of `weightlab bench igpg`: IGPG's fit as the `igpg` plugin runs it (its
defaults but chunks of CHUNK parameters and the support-set condition; same sizes, same
operations, same optimisers), with the same torch install.

1. normalise (per-coordinate mean, one overall scale), cut each checkpoint into tokens of CHUNK
   parameters;
2. STEPS AdamW steps (lr 1e-3, no weight decay) of the VQ-VAE on every token of every
   checkpoint: encoder [CHUNK, 64, 16] and decoder [16, 64, CHUNK] with SiLU, the nearest of 512
   codes, the straight-through estimator, reconstruction + 0.25 × commitment; the codebook
   follows moving averages (decay 0.9) of the encoder outputs assigned to each code (one-hot
   sums), codes unused for 100 steps restart at random encoder outputs;
3. STEPS AdamW steps (lr 1e-3, weight decay 1e-4) of the causal transformer over each
   checkpoint's codes (width 64, 2 pre-norm blocks of 4 heads, MLP 4× with GELU, a final layer
   norm, a head onto the 512 codes), with a prefix from the task's condition (its support set's
   encoding, standardised; 10 synthetic tasks here) plus an architecture embedding; the
   masked cross-entropy of every token given the ones before (teacher forcing).

Every AdamW is PyTorch's fused one (`fused=True`), its fastest on the CPU: the strongest reference.

Usage: python igpg.py ROWS PARAMS STEPS CHUNK; prints the seconds of the whole fit."""
import math, sys, time
import torch
import torch.nn.functional as F
from generator_common import arguments_and_checkpoints, mlp

rows, p, steps, _, _, weights = arguments_and_checkpoints(sys.argv[:4])
chunk = int(sys.argv[4])
codebook, code_dim, commitment, reset_every, decay = 512, 16, 0.25, 100, 0.9
dim, depth, heads, support_dim, tasks, arch_features = 64, 2, 4, 64, 10, 16
support = torch.randn(tasks, support_dim)[torch.arange(rows) % tasks]


class Block(torch.nn.Module):
    """A pre-norm transformer block with causal attention, as the SDK's `TransformerBlock`."""

    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.qkv, self.out = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)
        self.mlp = mlp([dim, 4 * dim, dim], torch.nn.GELU)

    def attention(self, x):
        n, l, d = x.shape
        qkv = self.qkv(x).reshape(n, l, 3, heads, d // heads)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        return self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, l, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.mlp(self.ln2(x))


start = time.perf_counter()
# The SDK's Normalizer: every coordinate varies here, so one run of them.
weights.std(0)
mean = weights.mean(0, keepdim=True)
centred = weights - mean
x = centred / centred.square().mean().sqrt().clamp_min(1e-8)
tokens = (p + chunk - 1) // chunk
xc = torch.cat([x, torch.zeros(rows, tokens * chunk - p)], 1).reshape(rows * tokens, chunk)
n = rows * tokens

encoder, decoder = mlp([chunk, 64, code_dim], torch.nn.SiLU), mlp([code_dim, 64, chunk], torch.nn.SiLU)
with torch.no_grad():
    book = encoder(xc)[torch.randint(0, n, (codebook,))]


def nearest(ze):
    return (2.0 * (ze @ book.t()) - book.square().sum(1).unsqueeze(0)).argmax(1)


opt = torch.optim.AdamW([*encoder.parameters(), *decoder.parameters()], lr=1e-3, weight_decay=0.0, fused=True)
identity = torch.eye(codebook)
used = torch.zeros(codebook, dtype=torch.bool)
for step in range(steps):
    ze = encoder(xc)
    idx = nearest(ze)
    zq = book[idx]
    st = ze + (zq - ze).detach()
    recon = F.mse_loss(decoder(st), xc)
    commit = F.mse_loss(ze, zq)
    loss = recon + commitment * commit
    opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        onehot = identity[idx]
        counts = onehot.sum(0).unsqueeze(1)
        means = (onehot.t() @ ze) / counts.clamp_min(1.0)
        book = book - (book - means) * (counts.clamp(0.0, 1.0) * (1.0 - decay))
        codes = idx.tolist()
        used[idx] = True
        if (step + 1) % reset_every == 0 and step + 1 < steps:
            if not bool(used.all()):
                fresh = ze[torch.randint(0, n, (codebook,))]
                keep = used.float().unsqueeze(1)
                book = book * keep + fresh * (1.0 - keep)
            used[:] = False
        if step % 100 == 0 or step + 1 == steps:
            recon.item()
            usage = torch.bincount(idx, minlength=codebook).float() / n
            usage = usage[usage > 0]
            (-(usage * usage.log()).sum()).exp().item()
with torch.no_grad():
    codes = nearest(encoder(xc)).reshape(rows, tokens)
    F.mse_loss(decoder(book[codes.reshape(-1)]).reshape(rows, tokens * chunk)[:, :p], x).item()

condition = (support - support.mean(0, keepdim=True)) / support.std(0, keepdim=True).clamp_min(1e-6)
architecture = torch.zeros(rows, arch_features)
architecture[:, 0] = math.log2(p)
prefix_cond, prefix_arch = torch.nn.Linear(support_dim, dim), torch.nn.Linear(arch_features, dim)
token_embedding = torch.nn.Parameter(torch.randn(codebook, dim) * 0.02)
positions = torch.nn.Parameter(torch.randn(tokens, dim) * 0.02)
blocks = torch.nn.ModuleList([Block() for _ in range(depth)])
final, head = torch.nn.LayerNorm(dim), torch.nn.Linear(dim, codebook)
params = [token_embedding, positions, *prefix_cond.parameters(), *prefix_arch.parameters(), *blocks.parameters(), *final.parameters(), *head.parameters()]
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4, fused=True)
inputs, targets = codes[:, : tokens - 1], codes.reshape(-1)
onehot = torch.eye(codebook)[targets]
mask = torch.ones(rows * tokens)
counted = mask.sum().item()
for step in range(steps):
    prefix = (prefix_cond(condition) + prefix_arch(architecture)).unsqueeze(1)
    h = torch.cat([prefix, F.embedding(inputs, token_embedding)], 1) + positions.unsqueeze(0)
    for b in blocks:
        h = b(h)
    logp = head(final(h)).reshape(rows * tokens, codebook).log_softmax(1)
    loss = (-(logp * onehot).sum(1) * mask).sum() / counted
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 100 == 0 or step + 1 == steps:
        loss.item()
print(time.perf_counter() - start)
