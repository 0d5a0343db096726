"""CLIP tokens and A1111's 75-token chunking, without torch: shared by the token counter and the encoder.

The tokenizer is built with the `tokenizers` library from the bundled vocab.json + merges.txt and
is configured like transformers' CLIPTokenizer (NFC, whitespace runs -> one space, lower case, CLIP's
word regex, byte-level BPE with the `</w>` end-of-word suffix), so both give the same ids; a test
holds them to that. Building it takes ~0.3 s, so it is built once and kept.

Chunking follows A1111's sd_hijack_clip, with three deliberate differences:
- When the comma rule moves the words after a comma to the next chunk, embeddings among them move
  too. A1111 moves only their placeholder tokens: the vectors are written at the old offsets, over
  the first chunk's end padding, and the moved placeholders are encoded as the token "!".
- BREAK inside brackets still starts a new chunk (prompts.py: A1111 turns it into a weighted word).
- The positive and negative prompts are always padded to the same number of chunks with empty
  chunks (conditioning.py), as A1111 does only with its "pad prompt/negative prompt" option; by
  default it runs the UNet separately for the two when their lengths differ, which costs a second
  UNet call per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from picotui.engine.prompting.prompts import is_break, parse_prompt_attention, strip_extra_networks
from picotui.paths import assets_dir

START_ID = 49406  # <|startoftext|>
END_ID = 49407  # <|endoftext|>; SD1.x pads with it too
COMMA_ID = 267  # ",</w>"
CHUNK_TOKENS = 75  # content tokens per chunk; each chunk is wrapped in start/end to make 77
COMMA_BACKTRACK = 20  # A1111's comma_padding_backtrack default
CLIP_WORDS = r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"

Tokenize = Callable[[list[str]], list[list[int]]]


@lru_cache(maxsize=1)
def clip_tokenizer():
    """The CLIP BPE tokenizer as a `tokenizers.Tokenizer` (cached: the UI counts on every keystroke)."""
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    folder = assets_dir() / "sd15" / "tokenizer"
    model = BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<|endoftext|>",
                          continuing_subword_prefix="", end_of_word_suffix="</w>", fuse_unk=False)
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                           normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_WORDS), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.add_special_tokens([AddedToken("<|startoftext|>", normalized=False, special=True),
                            AddedToken("<|endoftext|>", normalized=False, special=True)])
    return tok


def tokenize(texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without start/end tokens."""
    if not texts:
        return []
    return [enc.ids for enc in clip_tokenizer().encode_batch(list(texts), add_special_tokens=False)]


# ---- embeddings in the token stream ----------------------------------------------------------------

class EmbeddingIndex:
    """Finds textual-inversion names in token streams, as A1111 does: by their token ids.

    A name matches where its own tokens appear (so case does not matter, and `bad-hands-5` matches
    across its five tokens); at one position the longest name wins. `vectors(name)` is asked only
    for names that occur, so the encoder loads only the files a prompt uses.
    """

    def __init__(self, names: Iterable[str], tokenize_fn: Tokenize, vectors: Callable[[str], int]):
        names = [n for n in names if n.strip()]
        self._vectors = vectors
        self._by_first: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        for name, ids in zip(names, tokenize_fn(names)):
            if ids:
                self._by_first.setdefault(ids[0], []).append((tuple(ids), name))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))

    def __bool__(self) -> bool:
        return bool(self._by_first)

    def match(self, ids: Sequence[int], pos: int) -> tuple[str, int, int] | None:
        """(name, vectors, tokens it covers) for a name starting at ids[pos], else None."""
        for seq, name in self._by_first.get(ids[pos], ()):
            if tuple(ids[pos:pos + len(seq)]) == seq:
                return name, self._vectors(name), len(seq)
        return None


def find_embeddings(text: str, names: Iterable[str]) -> list[str]:
    """The `names` that `text` (a prompt, tags and weights allowed) uses, found as the encoder finds them.

    Never raises. Used to tell the user about embedding files that exist but could not be used.
    """
    names = [str(n) for n in names]
    if not isinstance(text, str) or not names:
        return []
    index = EmbeddingIndex(names, tokenize, lambda name: 1)
    parsed = parse_prompt_attention(strip_extra_networks(text)[0])
    found: dict[str, None] = {}
    for ids in tokenize([piece for piece, weight in parsed if not is_break((piece, weight))]):
        pos = 0
        while pos < len(ids):
            hit = index.match(ids, pos)
            if hit is None:
                pos += 1
            else:
                found[hit[0]] = None
                pos += hit[2]
    return list(found)


# ---- chunks ------------------------------------------------------------------------------------------

@dataclass
class Chunk:
    """Up to 75 content tokens with per-token weights; embeddings sit in `fixes` as (offset, name)."""
    ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    fixes: list[tuple[int, str]] = field(default_factory=list)

    def padded(self) -> tuple[list[int], list[float]]:
        """77 ids and weights: start, content, end-token padding, end (A1111's layout)."""
        pad = CHUNK_TOKENS - len(self.ids)
        return ([START_ID, *self.ids, *[END_ID] * pad, END_ID], [1.0, *self.weights, *[1.0] * pad, 1.0])


def build_chunks(parsed: list[tuple[str, float]], tokenize_fn: Tokenize = tokenize,
                 index: EmbeddingIndex | None = None) -> list[Chunk]:
    """A1111's chunking of a parsed prompt: 75 tokens a chunk, BREAK starts a new one, embeddings never
    straddle two chunks, and a chunk that fills up within 20 tokens of a comma moves the words after
    that comma to the next chunk instead of cutting through them. Always at least one chunk."""
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def close(carry: Chunk | None = None) -> None:
        nonlocal chunk, last_comma
        chunks.append(chunk)
        chunk = carry or Chunk()
        last_comma = -1

    token_lists = tokenize_fn([text for text, _ in parsed])
    for ids, piece in zip(token_lists, parsed):
        if is_break(piece):
            close()
            continue
        weight = piece[1]
        pos = 0
        while pos < len(ids):
            token = ids[pos]
            full = len(chunk.ids) == CHUNK_TOKENS
            if token == COMMA_ID:
                last_comma = len(chunk.ids)
            elif full and last_comma != -1 and CHUNK_TOKENS - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                moved = Chunk(chunk.ids[cut:], chunk.weights[cut:],
                              [(off - cut, name) for off, name in chunk.fixes if off >= cut])
                del chunk.ids[cut:], chunk.weights[cut:]
                chunk.fixes = [(off, name) for off, name in chunk.fixes if off < cut]
                close(moved)
            if len(chunk.ids) == CHUNK_TOKENS:
                close()
            found = index.match(ids, pos) if index else None
            if found is None:
                chunk.ids.append(token)
                chunk.weights.append(weight)
                pos += 1
                continue
            name, vectors, covered = found
            vectors = min(vectors, CHUNK_TOKENS)
            if len(chunk.ids) + vectors > CHUNK_TOKENS:
                close()
            chunk.fixes.append((len(chunk.ids), name))
            chunk.ids.extend([0] * vectors)  # placeholders; the encoder writes the vectors over them
            chunk.weights.extend([weight] * vectors)
            pos += covered
    if chunk.ids or not chunks:
        chunks.append(chunk)
    return chunks


# ---- the counter the UI shows ------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenCount:
    tokens: int  # content tokens the encoder sees (embedding vectors count one each; no padding)
    chunks: int  # 77-token chunks the prompt is encoded as (at least 1)
    last_chunk: int = 0  # tokens in the last chunk: 75 - last_chunk is the room left before a new chunk

    @property
    def limit(self) -> int:
        """What A1111 shows after the slash: 75 per chunk."""
        return self.chunks * CHUNK_TOKENS

    @property
    def label(self) -> str:
        """The counter as A1111 shows it: 75 per full chunk plus the last chunk's tokens, over 75 per chunk
        ("cat " * 80 is 80/150; "cat BREAK dog" is 76/150, as BREAK fills the first chunk up)."""
        return f"{CHUNK_TOKENS * (self.chunks - 1) + self.last_chunk}/{self.limit}"


def count_tokens(text: str, embedding_vectors: dict[str, int] | None = None) -> TokenCount:
    """Count what the encoder will see: tags and weight syntax removed, BREAK and embeddings applied.

    Never raises (it runs on every keystroke), and takes time linear in the text's length.
    `embedding_vectors` maps embedding names (file stems) to their vector counts: pass
    `picotui.engine.prompting.embeddings.vector_counts(library.files("embedding"))`. Without it an embedding's
    name is counted as the words it spells, which is what the encoder does with a name it cannot use.
    """
    if not isinstance(text, str):
        return TokenCount(0, 1, 0)
    vectors = tuple(sorted((str(k), _safe_int(v)) for k, v in (embedding_vectors or {}).items()))
    return _count(text, vectors)


def _safe_int(value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return 1
    return max(1, n)


@lru_cache(maxsize=1)
def _index_for(vectors: tuple[tuple[str, int], ...]) -> EmbeddingIndex | None:
    if not vectors:
        return None
    table = dict(vectors)
    return EmbeddingIndex(table, tokenize, table.__getitem__)


@lru_cache(maxsize=256)
def _count(text: str, vectors: tuple[tuple[str, int], ...]) -> TokenCount:
    clean, _ = strip_extra_networks(text)
    chunks = build_chunks(parse_prompt_attention(clean), tokenize, _index_for(vectors))
    return TokenCount(sum(len(c.ids) for c in chunks), len(chunks), len(chunks[-1].ids))
