"""safetensors_write.py: the one safetensors writer of the reference-vector tools (tools/make_*.py).

write_safetensors(path, tensors, metadata): tensors is a list of (name, numpy array), written in
that order, little-endian, with string metadata; the header is padded to 8 bytes and the file is
written to path + ".tmp" and renamed, as src/train/safetensors.c does.
"""
import json
import os
import struct

import numpy as np

DTYPES = {"f4": "F32", "f8": "F64", "u1": "U8", "i1": "I8", "i4": "I32", "i8": "I64", "f2": "F16"}


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        code = arr.dtype.kind + str(arr.dtype.itemsize)
        if code not in DTYPES:
            raise ValueError("%s: dtype %s cannot be stored" % (name, arr.dtype))
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[code], "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for raw in blobs:
            fh.write(raw)
    os.replace(tmp, path)
