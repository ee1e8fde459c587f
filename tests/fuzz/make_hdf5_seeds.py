#!/usr/bin/python3
"""Writes the hdf5 fuzz target's seeds (tests/fuzz/corpus/hdf5/): tiny Keras
weight files in the layouts the reader accepts, a few KB each so that the
fuzzer mutates structure rather than weights. Run once; the files are kept in
git. Usage: make_hdf5_seeds.py OUT_DIR   (needs h5py: /usr/bin/python3)"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(0)


def layer(g, name, weights, vlen=False):
    lg = g.create_group(name)
    names = [f"{name}/{w}:0" for w in weights]
    if vlen:
        lg.attrs.create("weight_names", names, dtype=h5py.string_dtype())
    else:
        lg.attrs["weight_names"] = np.array([n.encode() for n in names])
    sub = lg.create_group(name)
    for w, (shape, kw) in weights.items():
        sub.create_dataset(w, data=rng.standard_normal(shape).astype(kw.pop("dtype", "f4")), **kw)


def keras(path, nested, vlen=False, compress=False):
    with h5py.File(path, "w", libver="earliest") as f:
        g = f.create_group("model_weights") if nested else f
        extra = {"chunks": True, "compression": "gzip", "shuffle": True, "fletcher32": True} if compress else {}
        layer(g, "conv2d_1", {"kernel": ((3, 3, 3, 2), dict(extra)), "bias": ((2,), {})}, vlen)
        layer(g, "batch_normalization_1", {"gamma": ((2,), {}), "moving_variance": ((2,), {"dtype": "f8"})}, vlen)
        g.create_group("max_pooling2d_1").attrs["weight_names"] = np.zeros(0, "f4")  # Keras' empty list
        layer(g, "dense_1", {"kernel": ((4, 1), {}), "bias": ((1,), {})}, vlen)
        layers = [b"conv2d_1", b"batch_normalization_1", b"max_pooling2d_1", b"dense_1"]
        if vlen:
            g.attrs.create("layer_names", [l.decode() for l in layers], dtype=h5py.string_dtype())
        else:
            g.attrs["layer_names"] = np.array(layers)


os.makedirs(out, exist_ok=True)
keras(os.path.join(out, "save_weights.h5"), nested=False)
keras(os.path.join(out, "model_save.h5"), nested=True)
keras(os.path.join(out, "vlen_names.h5"), nested=True, vlen=True)
keras(os.path.join(out, "chunked_deflate.h5"), nested=False, compress=True)
with h5py.File(os.path.join(out, "not_keras.h5"), "w") as f:
    f.create_dataset("x", data=np.arange(4, dtype="f4"))
