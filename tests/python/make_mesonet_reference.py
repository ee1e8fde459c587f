#!/usr/bin/python3
"""Writes the MesoNet fixtures for the C++ parity and loader tests:

  mesonet_crops.u8        N crops, 256x256 BGR uint8, row-major (fed to C++ as is)
  mesonet_expected.json   per model file: the net's output logit and P(real) per crop
  meso_bad_*.h5             broken and hostile Keras files for the loader's negative tests

The reference is an independent torch.nn rebuild of the authors' Keras graph
(classifiers.py: Meso4, MesoInception4), loaded straight from the .h5 files
with h5py: Keras kernels HWIO -> OIHW, 'same' padding, ReLU then
BatchNormalization (epsilon 1e-3), max pooling, Flatten in Keras' channel-last
order (the dense kernel stays as Keras stores it), Dense 16, LeakyReLU 0.1,
Dense 1, sigmoid = P(real). Keras layers are matched by their number
(conv2d_N in creation order), the only order the file records.

Usage: make_mesonet_reference.py MODELS_DIR FACES_DIR ASTRONAUT_PNG OUT_DIR
"""
import json
import os
import shutil
import sys

import h5py
import numpy as np
import torch
from PIL import Image
from torch import nn

MODELS = ["Meso4_DF.h5", "Meso4_F2F.h5", "MesoInception_DF.h5", "MesoInception_F2F.h5"]
FACES = ["df00204.jpg", "df01254.jpg", "real00240.jpg", "real00772.jpg"]


def keras_weights(path):
    f = h5py.File(path, "r")
    g = f["model_weights"] if "model_weights" in f else f
    out = {}
    for layer in g.attrs["layer_names"]:
        layer = layer.decode()
        for wn in g[layer].attrs["weight_names"]:
            wn = wn.decode()
            out[(layer, wn.split("/")[-1].split(":")[0])] = torch.tensor(np.array(g[layer][wn]))
    return out


def layers_of(w, kind):
    names = sorted({l for (l, _) in w if l.rsplit("_", 1)[0] == kind}, key=lambda l: int(l.rsplit("_", 1)[1]))
    return names


class KerasFlatten(nn.Module):
    def forward(self, x):  # NCHW -> NHWC, then flatten: Keras' order
        return x.permute(0, 2, 3, 1).flatten(1)


def conv(w, layer, dilation=1):
    k = w[(layer, "kernel")]  # [kh, kw, in, out]
    c = nn.Conv2d(k.shape[2], k.shape[3], k.shape[0], padding="same", dilation=dilation)
    c.weight.data = k.permute(3, 2, 0, 1).contiguous()
    c.bias.data = w[(layer, "bias")]
    return nn.Sequential(c, nn.ReLU())


def bn(w, layer):
    g = w[(layer, "gamma")]
    b = nn.BatchNorm2d(g.shape[0], eps=1e-3)
    b.weight.data, b.bias.data = g, w[(layer, "beta")]
    b.running_mean.data, b.running_var.data = w[(layer, "moving_mean")], w[(layer, "moving_variance")]
    return b


def dense(w, layer):
    k = w[(layer, "kernel")]  # [in, out]
    d = nn.Linear(k.shape[0], k.shape[1])
    d.weight.data = k.t().contiguous()
    d.bias.data = w[(layer, "bias")]
    return d


class Inception(nn.Module):
    def __init__(self, w, layers):  # 7 conv layers in creation order
        super().__init__()
        self.x1 = conv(w, layers[0])
        self.x2 = nn.Sequential(conv(w, layers[1]), conv(w, layers[2]))
        self.x3 = nn.Sequential(conv(w, layers[3]), conv(w, layers[4], dilation=2))
        self.x4 = nn.Sequential(conv(w, layers[5]), conv(w, layers[6], dilation=3))

    def forward(self, x):
        return torch.cat([self.x1(x), self.x2(x), self.x3(x), self.x4(x)], 1)


def build(path):
    w = keras_weights(path)
    convs, bns, dens = layers_of(w, "conv2d"), layers_of(w, "batch_normalization"), layers_of(w, "dense")
    if len(convs) == 4:
        front = [conv(w, convs[0]), bn(w, bns[0]), nn.MaxPool2d(2),
                 conv(w, convs[1]), bn(w, bns[1]), nn.MaxPool2d(2)]
        rest = convs[2:]
    else:
        front = [Inception(w, convs[0:7]), bn(w, bns[0]), nn.MaxPool2d(2),
                 Inception(w, convs[7:14]), bn(w, bns[1]), nn.MaxPool2d(2)]
        rest = convs[14:]
    net = nn.Sequential(*front,
                        conv(w, rest[0]), bn(w, bns[2]), nn.MaxPool2d(2),
                        conv(w, rest[1]), bn(w, bns[3]), nn.MaxPool2d(4),
                        KerasFlatten(), nn.Dropout(0.5), dense(w, dens[0]), nn.LeakyReLU(0.1),
                        nn.Dropout(0.5), dense(w, dens[1]))  # logit; sigmoid = P(real)
    return net.eval()


def resize_rgb(rgb, size=256):
    """uint8 HxWx3 -> uint8 size x size x 3, bilinear without antialiasing (as cv::INTER_LINEAR)."""
    t = torch.tensor(rgb).permute(2, 0, 1).unsqueeze(0).float()
    t = nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return t.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()


def crops(faces_dir, astronaut):
    out = [resize_rgb(np.asarray(Image.open(os.path.join(faces_dir, f)).convert("RGB"))) for f in FACES]
    a = np.asarray(Image.open(astronaut).convert("RGB"))
    for (x, y, s) in [(150, 60, 190), (120, 40, 240), (0, 0, 512)]:
        out.append(resize_rgb(a[y:y + s, x:x + s]))
    g = torch.Generator().manual_seed(11)
    out.append(torch.randint(0, 256, (256, 256, 3), generator=g, dtype=torch.uint8).numpy())
    return np.stack(out)  # [N, 256, 256, 3] RGB


def write_bad_files(models_dir, out):
    src = os.path.join(models_dir, "Meso4_DF.h5")

    def copy(name):
        p = os.path.join(out, name)
        shutil.copyfile(src, p)
        os.chmod(p, 0o644)
        return p

    data = open(src, "rb").read()
    open(os.path.join(out, "meso_bad_truncated.h5"), "wb").write(data[: len(data) // 2])
    rng = np.random.default_rng(5)
    open(os.path.join(out, "meso_bad_not_hdf5.h5"), "wb").write(rng.bytes(4096))
    open(os.path.join(out, "meso_bad_hdf5_garbage.h5"), "wb").write(b"\x89HDF\r\n\x1a\n" + rng.bytes(4096))

    # A layer renamed: its weights arrive as 'convolution_6/...'.
    with h5py.File(copy("meso_bad_layer_names.h5"), "r+") as f:
        f.move("conv2d_6", "convolution_6")
        f.attrs["layer_names"] = np.array([n.replace(b"conv2d_6", b"convolution_6") for n in f.attrs["layer_names"]])
    # A kernel of the wrong shape.
    with h5py.File(copy("meso_bad_shapes.h5"), "r+") as f:
        del f["conv2d_6/conv2d_6/kernel:0"]
        f["conv2d_6/conv2d_6"].create_dataset("kernel:0", data=np.zeros((5, 5, 8, 9), np.float32))
    # The last dense layer gone.
    with h5py.File(copy("meso_bad_missing_layer.h5"), "r+") as f:
        del f["dense_4"]
        f.attrs["layer_names"] = np.array([n for n in f.attrs["layer_names"] if n != b"dense_4"])
    # Integers where floats belong.
    with h5py.File(copy("meso_bad_dtype.h5"), "r+") as f:
        del f["dense_4/dense_4/bias:0"]
        f["dense_4/dense_4"].create_dataset("bias:0", data=np.zeros((1,), np.int32))
    # Hostile: a declared 2^31 x 2^31 dataset (never written: the file stays small).
    with h5py.File(copy("meso_bad_huge.h5"), "r+") as f:
        del f["dense_4/dense_4/bias:0"]
        f["dense_4/dense_4"].create_dataset("bias:0", shape=(2 ** 31, 2 ** 31), dtype=np.float32, chunks=(1, 1))
    # Hostile: data kept in another file, and a link into another file.
    with h5py.File(copy("meso_bad_external_storage.h5"), "r+") as f:
        del f["dense_4/dense_4/bias:0"]
        f["dense_4/dense_4"].create_dataset("bias:0", shape=(1,), dtype=np.float32, external=[("/etc/hostname", 0, 4)])
    with h5py.File(copy("meso_bad_external_link.h5"), "r+") as f:
        del f["dense_4/dense_4/bias:0"]
        f["dense_4/dense_4/bias:0"] = h5py.ExternalLink("/etc/other.h5", "/x")
    # Hostile: a filter that would need a plugin (LZF: h5py's own).
    with h5py.File(copy("meso_bad_filter.h5"), "r+") as f:
        del f["dense_4/dense_4/bias:0"]
        f["dense_4/dense_4"].create_dataset("bias:0", data=np.zeros((1,), np.float32), compression="lzf")
    # Hostile: a layer list far longer than any model's.
    with h5py.File(os.path.join(out, "meso_bad_many_layers.h5"), "w", libver="latest") as f:
        f.attrs["layer_names"] = np.array([b"l%d" % i for i in range(200000)])
    # An HDF5 file that is not a Keras weight file.
    with h5py.File(os.path.join(out, "meso_bad_not_keras.h5"), "w") as f:
        f.create_dataset("x", data=np.zeros((3,), np.float32))


def main():
    models_dir, faces_dir, astronaut, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    rgb = crops(faces_dir, astronaut)
    rgb[:, :, :, ::-1].copy().tofile(os.path.join(out, "mesonet_crops.u8"))  # BGR, as OpenCV holds images
    x = torch.tensor(rgb).permute(0, 3, 1, 2).float() / 255.0
    exp = {"n": int(rgb.shape[0]), "faces": FACES, "models": {}}
    with torch.no_grad():
        for m in MODELS:
            z = build(os.path.join(models_dir, m))(x)[:, 0]
            exp["models"][m] = {"logit": z.tolist(), "p_real": torch.sigmoid(z).tolist()}
    with open(os.path.join(out, "mesonet_expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    write_bad_files(models_dir, out)


if __name__ == "__main__":
    main()
