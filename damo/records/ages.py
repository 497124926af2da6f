"""Region ages beside a record: written to the sidecar, read back, or derived.

recfmt v2 has no field for a region's age (`damo.core.age`), so a recording
writes the ages of each record to the sidecar as an ``"ages"`` message
(`damo.records.meta`): ``time_ns`` (the record's time), ``nr`` (its number
of regions, all targets in record order) and ``ages``, the regions' ages in
aggregations as little-endian unsigned integers of ``width`` bytes (1, 2 or
4: the smallest that holds the record's oldest; ages saturate at 2^32 - 1).
One byte per region while every age is below 256 aggregations (25.6 s at
the default interval): a twentieth of the record's own 20 bytes per region.

Reports get the ages of a file's snapshots from `RecordAges`, chunk by chunk
as they read the record: from the sidecar where it holds them, otherwise
derived from the snapshots themselves by the kernel's rule (`derive`), so
every record has ages, those from older recordings, the kernel's tracepoint
without age, perf-script text or other tools only approximately.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np

from damo.core.native import extension
from damo.records.snapshots import Snapshots

AGE_MAX = (1 << 32) - 1


def encode(ages: Sequence[np.ndarray]) -> dict[str, Any]:
    """The fields of an ``"ages"`` message for one record's targets' age arrays."""
    flat = np.asarray(ages[0], dtype=np.int64) if len(ages) == 1 else \
        np.concatenate([np.asarray(a, dtype=np.int64) for a in ages]) if ages else \
        np.zeros(0, dtype=np.int64)
    top = int(flat.max()) if len(flat) else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
    data = np.minimum(flat, AGE_MAX).astype(f"<u{width}").tobytes()
    return {"nr": len(flat), "width": width, "ages": data}


def decode(message: dict[str, Any]) -> np.ndarray | None:
    """The ages of an ``"ages"`` message (int64), or None when it is malformed."""
    try:
        width, data, nr = int(message["width"]), message["ages"], int(message["nr"])
        if width not in (1, 2, 4) or not isinstance(data, bytes) or len(data) != nr * width:
            return None
        return np.frombuffer(data, dtype=f"<u{width}").astype(np.int64)
    except (KeyError, TypeError, ValueError):
        return None


class SidecarAges:
    """The ``"ages"`` messages of a record's sidecar, read as the record is.

    The sidecar is read a buffer at a time (it can be large: it also holds
    every mapping change), never whole.  `for_chunk` gives the ages of each
    snapshot of a chunk, or None for snapshots whose record has no message
    (or one that does not match the record's regions).
    """

    def __init__(self, record_path: str | None):
        self._file = None
        self._unpacker = None
        self._next: tuple[int, np.ndarray | None] | None = None
        self.nr_found = 0
        if record_path is None:
            return
        import msgpack

        from damo.records.meta import meta_path

        try:
            self._file = open(meta_path(record_path), "rb")  # noqa: SIM115 - closed in close()
        except OSError:
            return
        self._unpacker = msgpack.Unpacker(self._file, raw=False, strict_map_key=False,
                                          read_size=1 << 16)

    def _advance(self) -> None:
        """Read up to the next ``"ages"`` message (None at the end, or on damage)."""
        self._next = None
        if self._unpacker is None:
            return
        try:
            for message in self._unpacker:
                if isinstance(message, dict) and message.get("type") == "ages":
                    self._next = (int(message.get("time_ns", -1)), decode(message))
                    return
        except Exception:  # a damaged or cut sidecar: ages end there, the record does not
            pass
        self.close()

    def at(self, time_ns: int, nr: int) -> np.ndarray | None:
        """The ages of the record at `time_ns` with `nr` regions, if the sidecar has them.

        Records come in time order: messages before `time_ns` are passed by.
        """
        if self._unpacker is None and self._next is None:
            return None
        if self._next is None:
            self._advance()
        while self._next is not None and self._next[0] < time_ns:
            self._advance()
        if self._next is None or self._next[0] != time_ns:
            return None
        ages = self._next[1]
        self._advance()
        if ages is None or len(ages) != nr:
            return None
        self.nr_found += 1
        return ages

    def for_chunk(self, snaps: Snapshots) -> list[np.ndarray | None]:
        """Per snapshot of the chunk: its regions' ages from the sidecar, or None."""
        out: list[np.ndarray | None] = [None] * len(snaps)
        if self._unpacker is None and self._next is None:
            return out
        offsets = snaps.offsets.tolist()
        for time_ns, idx in snaps.record_groups():
            lo, hi = offsets[idx.start], offsets[idx.stop]
            ages = self.at(int(time_ns), hi - lo)
            if ages is None:
                continue
            for i in idx:
                out[i] = ages[offsets[i] - lo:offsets[i + 1] - lo]
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._unpacker = None


class _Last:
    """A target's last snapshot: what the next one's ages are derived from."""

    def __init__(self, start: np.ndarray, end: np.ndarray, nr: np.ndarray, age: np.ndarray):
        self.start, self.end, self.nr, self.age = start, end, nr, age


def derive(start: np.ndarray, end: np.ndarray, nr: np.ndarray, owner: np.ndarray | None,
           nr_snapshots: int, known: Sequence[np.ndarray | None],
           last: _Last | None, offsets: np.ndarray | None = None) -> tuple[np.ndarray, _Last]:
    """Ages of one target's consecutive snapshots, by the kernel's rule at snapshot level.

    `start`, `end`, `nr` are the snapshots' regions flat, `owner` the snapshot
    (0 .. nr_snapshots - 1) of each (or None and `offsets`, each snapshot's
    first region and the end); `known[k]`, when not None, is snapshot
    k's ages from the sidecar (taken as they are); `last` is the snapshot
    before the first (None at the target's start: as the kernel's first
    aggregation, everything was unaccessed and of age 0 before it).

    Each piece of a region that the previous snapshot covered continues that
    region's age (+1) when the counts are alike (`damo.core.age.changed`, the
    threshold a tenth of the snapshot's highest count), else starts at 0, as
    does memory the previous snapshot did not cover; the region takes the
    size-weighted age of its pieces (to the nearest).  The merges and splits between two
    snapshots are not in the record, so this follows the kernel's ages only
    approximately.  Returns the ages (int64, flat as the input) and the last
    snapshot, for the next call.  The sweep is damo/records/_ages.c's.
    """
    start = np.ascontiguousarray(start, dtype=np.int64)
    end = np.ascontiguousarray(end, dtype=np.int64)
    nr = np.ascontiguousarray(nr, dtype=np.int64)
    n = len(start)
    if nr_snapshots == 0:
        return np.zeros(0, dtype=np.int64), last
    if offsets is not None:  # `owner` as offsets, already known
        cstart = np.ascontiguousarray(offsets, dtype=np.int64)
        counts = np.diff(cstart)
    else:
        counts = np.bincount(owner, minlength=nr_snapshots)
        cstart = np.zeros(nr_snapshots + 1, dtype=np.int64)
        np.cumsum(counts, out=cstart[1:])

    def last_of(ages: np.ndarray) -> _Last:
        # Copies: the last snapshot must not keep the whole chunk alive.
        k = slice(int(cstart[-2]), int(cstart[-1]))
        return _Last(start[k].copy(), end[k].copy(), nr[k].copy(), ages[k].copy())

    if all(k is not None for k in known):  # all from the sidecar: nothing to derive
        ages = np.concatenate([np.asarray(k, dtype=np.int64) for k in known])
        return ages, last_of(ages)
    if last is None:
        k0 = slice(int(cstart[0]), int(cstart[1]))
        last = _Last(start[k0], end[k0], np.zeros(int(counts[0]), dtype=np.int64),
                     np.zeros(int(counts[0]), dtype=np.int64))
    mx = np.zeros(nr_snapshots, dtype=np.int64)
    full = np.flatnonzero(counts)
    if len(full):
        mx[full] = np.maximum.reduceat(nr, cstart[full])
    thres = mx // 10
    ages = np.zeros(n, dtype=np.int64)
    mask = np.zeros(nr_snapshots, dtype=np.uint8)
    for k, a in enumerate(known):
        if a is not None:
            ages[cstart[k]:cstart[k + 1]] = a
            mask[k] = 1
    extension("damo.records._ages").derive(
        start, end, nr, cstart, thres, mask,
        *(np.ascontiguousarray(x, dtype=np.int64)
          for x in (last.start, last.end, last.nr, last.age)), ages)
    return ages, last_of(ages)


class RecordAges:
    """The ages of a record file's snapshots, chunk by chunk (see the module docstring).

    Call `for_chunk` with the chunks in file order; `from_sidecar` and
    `derived` count the snapshots whose ages came from each.
    """

    def __init__(self, record_path: str | None):
        self.sidecar = SidecarAges(record_path)
        self._last: dict[int, _Last] = {}
        self.from_sidecar = 0
        self.derived = 0

    def for_chunk(self, snaps: Snapshots) -> np.ndarray:
        """Ages (int64, aggregations) aligned with the chunk's flat region arrays."""
        if snaps.age is not None:  # the record itself holds them (upstream's JSON records)
            self.from_sidecar += len(snaps)
            return snaps.age.astype(np.int64)
        known = self.sidecar.for_chunk(snaps)
        if len(snaps) and (snaps.target_id == snaps.target_id[0]).all():
            # One target (the usual record): its regions are the whole chunk, no gather.
            tid = int(snaps.target_id[0])
            found = sum(a is not None for a in known)
            self.from_sidecar += found
            self.derived += len(known) - found
            base = snaps.offsets[0]
            ages, self._last[tid] = derive(
                snaps.start.view(np.int64), snaps.end.view(np.int64), snaps.nr_accesses, None,
                len(snaps), known, self._last.get(tid), offsets=snaps.offsets - base)
            return ages
        out = np.zeros(len(snaps.start), dtype=np.int64)
        for tid in snaps.target_ids():
            idx = snaps.of_target(tid)
            flat, owner = snaps.region_index(idx)
            mine = [known[i] for i in idx.tolist()]
            found = sum(a is not None for a in mine)
            self.from_sidecar += found
            self.derived += len(mine) - found
            ages, self._last[tid] = derive(
                snaps.start[flat], snaps.end[flat], snaps.nr_accesses[flat], owner,
                len(idx), mine, self._last.get(tid))
            out[flat] = ages
        return out

    def close(self) -> None:
        self.sidecar.close()
