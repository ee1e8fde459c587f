#!/usr/bin/python3
"""Writes hostile model files for the loader's security tests: each declares
sizes, strides, nesting or keys meant to crash, overflow or exhaust a reader.
Every file is small; none needs PyTorch (the pickles are written by hand, as
an attacker would). Usage: make_hostile_checkpoints.py OUT_DIR

  wild_stride.pt          size (3,), stride (2**61,) over 16 bytes: the bounds check wraps
  past_end.pt             size (5,) over a storage of 4 elements
  wild_stride_wrap.pt     size (3,), stride (2**62,): (size-1)*stride overflows int64
  wild_negative_stride.pt stride (-1,)
  wild_offset.pt          storage offset 2**62
  wild_numel.pt           size (2**32, 2**32): the element count overflows
  wild_expand.pt          size (2**20,), stride (0,): a view far larger than its storage
  wild_storage_numel.pt   a storage declaring 2**40 elements
  storage_mismatch.pt     a storage record of 8 bytes where the pickle declares 16
  duplicate_key.pt        the same state_dict key twice
  deep_lists.pt           200,000 nested lists (recursive free: stack overflow)
  nested_lists.pt         50,000 nested lists (within the stack limit, beyond the depth limit)
  deep_tuples.pt          1,000,000 TUPLE1 ops
  self_list.pt            a list appended into itself through the memo, 100,000 times
  many_marks.pt           2,000,000 MARK ops (stack growth)
  oversize_pickle.pt      10,000,000 MARK ops: a pickle beyond the size limit
  pickle_bomb.pt          a DEFLATE data.pkl expanding to 256 MiB
  storage_bomb.pt         a DEFLATE storage record expanding to 512 MiB
  duplicate_key.safetensors   the same tensor name twice in the header
  wrapped_shape.safetensors   shape [3, 6148914691236517206]: numel wraps to 2
  deep_rank.safetensors       a tensor of 100 dimensions
"""
import json
import os
import struct
import sys
import zipfile
import zlib


def X(s):
    s = s.encode()
    return b"X" + struct.pack("<I", len(s)) + s


def L(i):
    return b"\x8a\x08" + struct.pack("<q", i)


def tensor_pickle(entries, storage_numel=4, dtype="FloatStorage"):
    """An OrderedDict of (name, size, stride, offset) tensors over storage '0'."""
    body = b"\x80\x02ccollections\nOrderedDict\n)R("
    for name, size, stride, offset in entries:
        body += (X(name) + b"ctorch._utils\n_rebuild_tensor_v2\n((" + X("storage") + b"ctorch\n" + dtype.encode()
                 + b"\n" + X("0") + X("cpu") + L(storage_numel) + b"tQ" + L(offset) + b"("
                 + b"".join(L(s) for s in size) + b"t(" + b"".join(L(s) for s in stride)
                 + b"t\x89ccollections\nOrderedDict\n)RtR")
    return body + b"u."


def write_pt(path, pickle, storage=b"\0" * 16, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl"), pickle, compress_type=compress)
        if storage is not None:
            z.writestr("archive/data/0", storage)
        z.writestr("archive/version", b"3\n")


def write_deflated_zeros(z, name, size):
    """A DEFLATE entry of `size` zero bytes, streamed (no large buffer here)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = b"\0" * (1 << 20)
    with z.open(info, "w", force_zip64=True) as f:
        for _ in range(size >> 20):
            f.write(chunk)


def write_safetensors(path, header, data):
    h = json.dumps(header).encode() if isinstance(header, dict) else header
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def main(out):
    os.makedirs(out, exist_ok=True)
    p = lambda n: os.path.join(out, n)
    write_pt(p("wild_stride.pt"), tensor_pickle([("w", [3], [1 << 61], 0)]))
    write_pt(p("past_end.pt"), tensor_pickle([("w", [5], [1], 0)]))
    write_pt(p("wild_stride_wrap.pt"), tensor_pickle([("w", [3], [1 << 62], 0)]))
    write_pt(p("wild_negative_stride.pt"), tensor_pickle([("w", [3], [-1], 2)]))
    write_pt(p("wild_offset.pt"), tensor_pickle([("w", [1], [1], 1 << 62)]))
    write_pt(p("wild_numel.pt"), tensor_pickle([("w", [1 << 32, 1 << 32], [0, 0], 0)]))
    write_pt(p("wild_expand.pt"), tensor_pickle([("w", [1 << 20], [0], 0)]))
    write_pt(p("wild_storage_numel.pt"), tensor_pickle([("w", [1], [1], 0)], storage_numel=1 << 40))
    write_pt(p("storage_mismatch.pt"), tensor_pickle([("w", [4], [1], 0)]), storage=b"\0" * 8)
    write_pt(p("duplicate_key.pt"), tensor_pickle([("w", [4], [1], 0), ("w", [2], [1], 0)]))

    n = 200000
    write_pt(p("deep_lists.pt"), b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b".", storage=None)
    write_pt(p("nested_lists.pt"), b"\x80\x02" + b"]" * 50000 + b"a" * 49999 + b".", storage=None)
    write_pt(p("deep_tuples.pt"), b"\x80\x02K\x00" + b"\x85" * 1000000 + b".", storage=None)
    write_pt(p("self_list.pt"), b"\x80\x02]q\x00" + b"h\x00a" * 100000 + b".", storage=None)
    write_pt(p("many_marks.pt"), b"\x80\x02" + b"(" * 2000000 + b".", storage=None)
    write_pt(p("oversize_pickle.pt"), b"\x80\x02" + b"(" * 10000000 + b".", storage=None,
             compress=zipfile.ZIP_DEFLATED)

    with zipfile.ZipFile(p("pickle_bomb.pt"), "w") as z:
        write_deflated_zeros(z, "archive/data.pkl", 256 << 20)
        z.writestr("archive/version", b"3\n")
    with zipfile.ZipFile(p("storage_bomb.pt"), "w") as z:
        z.writestr("archive/data.pkl", tensor_pickle([("w", [1 << 25], [1], 0)], storage_numel=1 << 25))
        write_deflated_zeros(z, "archive/data/0", 512 << 20)  # declares 4x what the pickle says
        z.writestr("archive/version", b"3\n")

    entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    write_safetensors(p("duplicate_key.safetensors"), ('{"a":%s,"a":%s}' % (entry, entry)).encode(), b"\0" * 4)
    write_safetensors(p("wrapped_shape.safetensors"),
                      {"w": {"dtype": "F32", "shape": [3, 6148914691236517206], "data_offsets": [0, 8]}}, b"\0" * 8)
    write_safetensors(p("deep_rank.safetensors"),
                      {"w": {"dtype": "F32", "shape": [1] * 100, "data_offsets": [0, 4]}}, b"\0" * 4)


if __name__ == "__main__":
    main(sys.argv[1])
