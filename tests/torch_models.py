"""PyTorch side of the compute core's interoperability test (engine/compute/tests/torch.rs).

Usage: python torch_models.py DIR
DIR holds `inputs.safetensors` (x: N × features, y: N) and `model-*.safetensors` state_dicts
exported by weightlab. For each model this loads the state_dict into a plain PyTorch module
with the same architecture (names and shapes must match exactly), prints its accuracy on the
inputs, and writes the state_dict back with torch as `torch-*.safetensors`.
"""
import json, pathlib, sys
import torch
from safetensors.torch import load_file, save_file


class Mlp(torch.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i + 1 < len(self.layers):
                x = torch.relu(x)
        return x


class CnnS(torch.nn.Module):
    """Hyper-Representations CNN-s: conv 8@5x5 → pool → conv 6@5x5 → pool → conv 4@2x2 → FC 36→20 → FC 20→10, tanh."""
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 5)
        self.conv2 = torch.nn.Conv2d(8, 6, 5)
        self.conv3 = torch.nn.Conv2d(6, 4, 2)
        self.fc1 = torch.nn.Linear(36, 20)
        self.fc2 = torch.nn.Linear(20, classes)

    def forward(self, x):
        x = x.reshape(-1, 1, 28, 28)
        x = torch.tanh(torch.max_pool2d(self.conv1(x), 2))
        x = torch.tanh(torch.max_pool2d(self.conv2(x), 2))
        x = torch.tanh(self.conv3(x))
        x = torch.tanh(self.fc1(x.flatten(1)))
        return self.fc2(x)


def build(state):
    if "conv1.weight" in state:
        return CnnS(state["fc2.weight"].shape[0])
    n = len([k for k in state if k.endswith(".weight")])
    sizes = [state["layers.0.weight"].shape[1]] + [state[f"layers.{i}.weight"].shape[0] for i in range(n)]
    return Mlp(sizes)


d = pathlib.Path(sys.argv[1])
inputs = load_file(str(d / "inputs.safetensors"))
x, y = inputs["x"], inputs["y"].long()
out = {}
for f in sorted(d.glob("model-*.safetensors")):
    state = load_file(str(f))
    model = build(state)
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out[f.name] = (model(x).argmax(1) == y).float().mean().item()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / f.name.replace("model-", "torch-")))
print(json.dumps(out))
