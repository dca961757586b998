"""PyTorch reference of `weightlab bench plugin`: the same MLP autoencoder loop
(P -> hidden -> P, tanh, Adam lr 1e-3, full batch) with the same torch install.
Usage: python autoencoder.py ROWS PARAMS HIDDEN STEPS; prints the seconds of the loop."""
import sys, time
import torch
from generator_common import warm_up

rows, p, hidden, steps = (int(a) for a in sys.argv[1:5])
warm_up()
torch.manual_seed(0)
x = torch.randn(rows, p)
start = time.perf_counter()
w1 = (torch.randn(hidden, p) * 0.01).requires_grad_()
b1 = torch.zeros(hidden, requires_grad=True)
w2 = (torch.randn(p, hidden) * 0.01).requires_grad_()
b2 = torch.zeros(p, requires_grad=True)
opt = torch.optim.Adam([w1, b1, w2, b2], lr=1e-3)
for _ in range(steps):
    h = torch.tanh(torch.nn.functional.linear(x, w1, b1))
    y = torch.nn.functional.linear(h, w2, b2)
    loss = torch.nn.functional.mse_loss(y, x)
    opt.zero_grad()
    loss.backward()
    opt.step()
print(time.perf_counter() - start)
