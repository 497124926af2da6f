"""The metadata sidecar: round trip, a run cut short, foreign content, safe creation."""

import os

import pytest

from damo.errors import RecordFormatError
from damo.records.meta import MetaWriter, meta_path, read_meta


def test_round_trip(tmp_path):
    out = str(tmp_path / "damon.data")
    with MetaWriter(out) as meta:
        meta.write("start", time_ns=1, attrs={"sample_us": 5000}, targets=[{"id": 42}])
        meta.write("maps", time_ns=2, target_id=42, maps=[[0x1000, 0x2000, "rw-p", 0, ""]])
        meta.write("end", time_ns=3, nr_records=0, reason="target exited")
    messages = read_meta(out)
    assert [m["type"] for m in messages] == ["start", "maps", "end"]
    assert messages[1]["maps"] == [[0x1000, 0x2000, "rw-p", 0, ""]]
    assert os.stat(meta_path(out)).st_mode & 0o777 == 0o600


def test_absent_is_none(tmp_path):
    assert read_meta(str(tmp_path / "damon.data")) is None


def test_cut_short_keeps_whole_messages(tmp_path):
    out = str(tmp_path / "damon.data")
    with MetaWriter(out) as meta:
        meta.write("start", time_ns=1)
        meta.write("maps", time_ns=2, target_id=1, maps=[[1, 2, "r--p", 0, "/x"]] * 10)
    path = meta_path(out)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-5])
    assert [m["type"] for m in read_meta(out)] == ["start"]


def test_foreign_content(tmp_path):
    out = str(tmp_path / "damon.data")
    open(meta_path(out), "wb").write(b"\x01\x02\x03")
    with pytest.raises(RecordFormatError, match="metadata"):
        read_meta(out)


def test_existing_sidecar_kept_as_old(tmp_path):
    out = str(tmp_path / "damon.data")
    open(meta_path(out), "wb").write(b"previous")
    MetaWriter(out).close()
    assert open(meta_path(out) + ".old", "rb").read() == b"previous"
