"""Sharded tensors through torch.distributed.checkpoint (DCP), stored as safetensors.

Each process writes the pieces of the tensors it holds (FSDP's shards of each weight and
optimizer moment; a tensor every process holds whole, such as AdamW's `step`, is written once)
into its own file, `shard-0000R-model-00001-of-00001.safetensors` for rank R-1, through DCP's
`HuggingFaceStorageWriter`. Each file's safetensors header records, as JSON, where each piece
sits in its whole tensor (`DCP_SHARDING_INFO`: the piece's offsets), so `HuggingFaceStorageReader`
rebuilds the layout of every tensor from the headers alone, and DCP's load planner reads
whatever pieces a process needs, at any number of processes.

DCP's default `FileSystemWriter`/`FileSystemReader` keep that layout in a pickled `.metadata`
file, which loading would unpickle; Megalith never unpickles a file, so it does not use them.
Only tensors go through here: a non-tensor value would be written by DCP as `torch.save` bytes.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

SHARD_SUFFIX = ".safetensors"


def write_shards(folder: Path, tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Write this process's pieces of `tensors` into `folder` (a collective: every process
    calls it with the same names; one process alone writes everything).

    Args:
        folder: created if missing; one file per process lands in it.
        tensors: names -> tensors (DTensors sharded by FSDP, or plain tensors).
    Returns:
        The SHA-256 (hex) of each file this process wrote, by file name, taken of its bytes
        as they were written (no file is read back).
    """
    import torch.distributed.checkpoint as dcp

    writer = _writer(folder)
    with _one_process_is_meant():
        dcp.save(dict(tensors), storage_writer=writer, no_dist=not _distributed())
    return writer.fs.digests


def start_writing_shards(
    folder: Path, tensors: Mapping[str, torch.Tensor], group: dist.ProcessGroup | None
) -> tuple[Future[Any], dict[str, str]]:
    """`write_shards` from a copy taken now, the writing on a background thread (DCP's
    `async_save`); returns the future of the write and the digests of this process's files,
    filled in by the time the future is done. Training may change `tensors` in place as soon
    as this returns.

    Args:
        group: a process group of its own for the write's collectives (gloo), so that they never
            interleave with training's; None with a single process.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.staging import DefaultStager, StagingOptions
    from torch.distributed.checkpoint.state_dict_saver import AsyncSaveResponse

    # on the CPU: a plain synchronous copy (pinned memory and CUDA streams are GPU-only)
    cuda = torch.cuda.is_available()
    stager = DefaultStager(StagingOptions(cuda, False, False, cuda))
    writer = _writer(folder)
    with _one_process_is_meant():
        response = dcp.async_save(
            dict(tensors),
            storage_writer=writer,
            process_group=group,
            async_stager=stager,
            no_dist=not _distributed(),
        )
    upload = response.upload_completion if isinstance(response, AsyncSaveResponse) else response
    upload.add_done_callback(lambda _: stager.close())
    return upload, writer.fs.digests


def read_whole(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor in `folder`, whole, on the CPU, however many processes wrote it; read by
    this process alone (no collective).

    Raises:
        ValueError: no shard files, or pieces that do not cover a tensor (a file missing).
    """
    tensors = {
        name: torch.empty(meta.size, dtype=meta.properties.dtype)
        for name, meta in tensor_layout(folder).items()
    }
    read_pieces(folder, tensors, collective=False)
    return tensors


def tensor_layout(folder: Path) -> dict[str, TensorStorageMetadata]:
    """Each tensor's whole size, dtype and stored pieces, from the safetensors headers of the
    files in `folder` (no tensor bytes are read).

    Raises:
        ValueError: no shard files, or pieces that do not cover a tensor (a file missing).
    """
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    if not any(folder.glob(f"*{SHARD_SUFFIX}")):
        raise ValueError(f"no shard files in {folder}")
    layout = HuggingFaceStorageReader(str(folder)).read_metadata().state_dict_metadata
    tensors: dict[str, TensorStorageMetadata] = {}
    for name, meta in layout.items():
        if not isinstance(meta, TensorStorageMetadata):
            raise ValueError(f"{folder}: '{name}' is not a tensor")
        values = math.prod(meta.size)
        stored = sum(math.prod(chunk.sizes) for chunk in meta.chunks)
        if stored != values:
            raise ValueError(
                f"{folder}: the pieces of '{name}' hold {stored} of its {values} values"
            )
        tensors[name] = meta
    return tensors


def read_pieces(folder: Path, tensors: Mapping[str, torch.Tensor], collective: bool = True) -> None:
    """Fill `tensors` in place from the files in `folder`: a DTensor receives only this
    process's shard, read from the byte ranges of the pieces that overlap it (safetensors'
    `get_slice`: no file is read whole), a plain tensor the whole tensor.

    Args:
        tensors: names -> destinations (the names in the files; any subset of them).
        collective: every process calls it at once with the same names (DCP plans the reads
            together); False reads in this process alone.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader

    reader = HuggingFaceStorageReader(str(folder))
    with _one_process_is_meant():
        no_dist = not (collective and _distributed())
        dcp.load(dict(tensors), storage_reader=reader, no_dist=no_dist)


def _writer(folder: Path) -> Any:
    from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageWriter

    writer = HuggingFaceStorageWriter(str(folder), save_distributed=True)
    writer.fs = _hashing_file_system()
    return writer


def _hashing_file_system() -> Any:
    """DCP's local file system, taking the SHA-256 of every file as its bytes are written
    (`.digests`: file name -> hex). DCP writes each safetensors file in one sequence of writes,
    on the thread of the write (the background one for async_save), so every process hashes
    its own files while it writes them."""
    from torch.distributed.checkpoint.filesystem import FileSystem

    class HashingFileSystem(FileSystem):
        def __init__(self) -> None:
            super().__init__()
            self.digests: dict[str, str] = {}

        @contextmanager
        def create_stream(self, path: str | os.PathLike[str], mode: str) -> Iterator[Any]:
            with super().create_stream(path, mode) as stream:
                if mode != "wb":
                    yield stream
                    return
                hashing = _HashingStream(stream)
                yield hashing
            self.digests[Path(path).name] = hashing.digest.hexdigest()

    return HashingFileSystem()


class _HashingStream(io.RawIOBase):
    """A file written front to back, hashed on the way; seeking is refused (it would make
    the hash wrong) by io.RawIOBase itself."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw, self.digest = raw, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = self.raw.write(data)
        self.digest.update(memoryview(data).cast("B")[:written])
        return int(written)

    def tell(self) -> int:
        return int(self.raw.tell())

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes first
            self.raw.close()


@contextmanager
def _one_process_is_meant() -> Iterator[None]:
    """DCP warns whenever it runs without a process group; here that is what is asked."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        yield


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()
