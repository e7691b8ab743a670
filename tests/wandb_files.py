"""Reading an offline W&B run's history, for tests (wandb ships no reader for it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[bytes]:
    """Payloads of a ``run-*.wandb`` file: a 7-byte ':W&B' header, then LevelDB log blocks."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer
            pos += left
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            yield pending + chunk
            pending = b""
        elif kind in (_FIRST, _MIDDLE):
            pending += chunk


def history_keys(path: Path) -> list[set[str]]:
    """The keys of each history row logged to an offline run file."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for payload in _records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key) for item in record.history.item})
    return rows


def _typed(path: Path, kind: str):
    from wandb.proto import wandb_internal_pb2

    for payload in _records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == kind:
            yield getattr(record, kind)


def run_names(path: Path) -> list[tuple[str, str]]:
    """(run id, display name) of each run record of an offline run file."""
    return [(run.run_id, run.display_name) for run in _typed(path, "run")]


def model_artifacts(path: Path) -> list[list[str]]:
    """The aliases of each model artifact logged to an offline run file."""
    return [list(a.aliases) for a in _typed(path, "artifact") if a.type == "model"]
