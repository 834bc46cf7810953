"""Byte-level BPE trained on the dataset's captions with the ``tokenizers`` library (offline)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SOT, EOT, PAD = "<sot>", "<eot>", "<pad>"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a lower-casing byte-level BPE; ids 0, 1, 2 are pad, start and end of text."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, SOT, EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def encode_batch(tok: Tokenizer, texts: list[str], context_length: int) -> torch.Tensor:
    """(B, T) token ids: <sot> text <eot>, truncated (keeping <eot>) and padded with 0."""
    sot, eot = tok.token_to_id(SOT), tok.token_to_id(EOT)
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, enc in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
        ids = [sot, *enc.ids[: context_length - 2], eot]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def decode(tok: Tokenizer, ids: torch.Tensor) -> str:
    """Text of one id row, without special tokens."""
    return tok.decode([int(i) for i in ids if int(i) > 2]).strip()
