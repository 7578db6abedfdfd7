"""MurmurHash3 (x86, 32-bit; Austin Appleby's public-domain algorithm) of a string's UTF-8 bytes,
signed as scikit-learn's `murmurhash3_32(key, seed)` returns it: the hash the `hash` tokenizer
buckets words by. Pure Python, so the torch-free runtime (which has no scikit-learn) hashes a
bundle's text exactly as training did; tests check it against scikit-learn's.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_C1, _C2 = 0xCC9E2D51, 0x1B873593


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _mix(k: int) -> int:
    return (_rotl((k * _C1) & _MASK, 15) * _C2) & _MASK


def murmurhash3_32(key: str, seed: int = 0) -> int:
    """The signed 32-bit MurmurHash3 of `key` encoded as UTF-8 (-2**31 <= result < 2**31)."""
    data = key.encode("utf-8")
    h = seed & _MASK
    whole = len(data) - len(data) % 4
    for start in range(0, whole, 4):  # the body, four bytes (little-endian) at a time
        h ^= _mix(int.from_bytes(data[start : start + 4], "little"))
        h = (_rotl(h, 13) * 5 + 0xE6546B64) & _MASK
    if len(data) > whole:  # the tail's 1-3 bytes
        h ^= _mix(int.from_bytes(data[whole:], "little"))
    h ^= len(data)
    h ^= h >> 16  # the finaliser
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h
