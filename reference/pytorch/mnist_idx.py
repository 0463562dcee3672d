"""Minimal reader for gzipped IDX files (MNIST format), written for this benchmark.

IDX layout: 2 zero bytes, 1 type byte (0x08 = unsigned byte), 1 byte with the
number of dimensions, then one big-endian uint32 per dimension, then the data.
"""
import gzip
import os
import struct

import numpy as np

# The repository's own copy: data/mnist-10k, two folders above this file.
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist-10k")


def data_dir(cli_value=None):
    """CLI value, else env ELBO_MNIST_DIR, else the repository's data/mnist-10k."""
    if cli_value:
        return cli_value
    return os.environ.get("ELBO_MNIST_DIR", DEFAULT_DIR)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {zero:#x} {dtype_code:#x})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if body.size != expected:
        raise ValueError(f"{path}: expected {expected} bytes of data, found {body.size}")
    return body.reshape(dims)


def write_idx_gz(path, array):
    """Write a uint8 array as gzipped IDX (used to export a fixed binarized test set)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header)
        f.write(array.tobytes())


def load_mnist(directory=None):
    """Returns dict with uint8 arrays: train_x [N,28,28], train_y [N], test_x, test_y."""
    d = data_dir(directory)
    out = {
        "train_x": read_idx(os.path.join(d, "train-images-idx3-ubyte.gz")),
        "train_y": read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")),
        "test_x": read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz")),
        "test_y": read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")),
    }
    assert out["train_x"].shape[0] == out["train_y"].shape[0]
    assert out["test_x"].shape[0] == out["test_y"].shape[0]
    return out
