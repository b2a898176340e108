"""bench/st_io.py - minimal safetensors reading and writing with numpy only.

Format: 8-byte little-endian header length N, N bytes of JSON (padded with
spaces to a multiple of 8), then the raw little-endian tensor data; every
tensor's data_offsets [begin, end) are relative to the start of the data and
contiguous from 0. Only the dtypes the benchmarks need are mapped.
"""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16,
          "I64": np.int64, "I32": np.int32, "U8": np.uint8}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def header_for(specs, metadata=None):
    """specs: list of (name, numpy dtype, shape) in file order.
    Returns (header bytes incl. the 8-byte length, list of (name, begin, end))."""
    hdr = {"__metadata__": dict(metadata or {"format": "pt"})}
    off = 0
    spans = []
    for name, dt, shape in specs:
        dt = np.dtype(dt)
        n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        hdr[name] = {"dtype": NAMES[dt], "shape": [int(s) for s in shape],
                     "data_offsets": [off, off + n]}
        spans.append((name, off, off + n))
        off += n
    text = json.dumps(hdr, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text, spans


class Writer:
    """Streaming writer: declare all tensors first, then write them in order."""

    def __init__(self, path, specs, metadata=None):
        self.f = open(path, "wb")
        head, self.spans = header_for(specs, metadata)
        self.f.write(head)
        self.i = 0
        self.specs = specs

    def write(self, name, arr):
        sname, dt, shape = self.specs[self.i]
        if name != sname:
            raise ValueError("write order: expected %s, got %s" % (sname, name))
        a = np.ascontiguousarray(arr, dtype=np.dtype(dt).newbyteorder("<"))
        if tuple(a.shape) != tuple(shape):
            raise ValueError("%s: shape %s != %s" % (name, a.shape, shape))
        self.f.write(a.tobytes())
        self.i += 1

    def close(self):
        if self.i != len(self.specs):
            raise ValueError("only %d of %d tensors written" % (self.i, len(self.specs)))
        self.f.close()


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (written in insertion order)."""
    specs = [(k, v.dtype, v.shape) for k, v in tensors.items()]
    w = Writer(path, specs, metadata)
    for k, v in tensors.items():
        w.write(k, v)
    w.close()


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    hdr.pop("__metadata__", None)
    return 8 + n, hdr


def load(path, mmap=True):
    """dict name -> numpy array (read-only views of a memory map when mmap)."""
    start, hdr = read_header(path)
    if mmap:
        buf = np.memmap(path, dtype=np.uint8, mode="r")
    else:
        buf = np.fromfile(path, dtype=np.uint8)
    out = {}
    for name, d in hdr.items():
        b, e = d["data_offsets"]
        dt = np.dtype(DTYPES[d["dtype"]]).newbyteorder("<")
        out[name] = buf[start + b:start + e].view(dt).reshape(d["shape"])
    return out
