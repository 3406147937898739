"""Datasets by name, held whole as uint8 tensors on the training device, with on-device augmentation.

A dataset is ``(train_x, train_y, test_x, test_y)``: images ``uint8[N, 3, 32, 32]`` and labels
``int64[N]``. Random crop (4-pixel zero padding) and horizontal flip run per sample on the device as
one gather per batch, from generators seeded by (seed, epoch), so a run's data stream depends on its
seed and nothing else (not on batch boundaries, worker counts or the device).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .seeding import generator

# CIFAR-10 normalisation of PROTOCOL.md (torchvision-style std of the authors' code)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(RuntimeError):
    """Missing or corrupt data; the CLI prints the message as one line and exits 2."""


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device) -> "Dataset":
        return Dataset(self.name, *(t.to(device) for t in (self.train_x, self.train_y, self.test_x, self.test_y)))


def default_root() -> Path:
    return Path(os.environ.get("FGGP_DATA", Path.home() / ".cache" / "fggp-data"))


def cache_dir() -> Path:
    return Path(os.environ.get("FGGP_CACHE", Path.home() / ".cache" / "fggp-repro"))


def _missing(what: str, root: Path, download_hint: bool) -> DataError:
    fix = "pass --data-root pointing at it"
    if download_hint:
        fix += ", or add --download to fetch genuine CIFAR-10 there"
    return DataError(f"{what} not found under {root}: {fix}")


# ---- genuine CIFAR-10 (python pickles) -----------------------------------------------------------

def _load_cifar10(root: Path, download: bool) -> Dataset:
    base = root / "cifar-10-batches-py"
    if not base.is_dir() and download:
        import torchvision  # only needed to download

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
        torchvision.datasets.CIFAR10(str(root), train=False, download=True)
    if not base.is_dir():
        raise _missing("CIFAR-10 (cifar-10-batches-py)", root, download_hint=True)

    def read(names):
        xs, ys = [], []
        for n in names:
            p = base / n
            try:
                with open(p, "rb") as fh:
                    d = pickle.load(fh, encoding="latin1")
                x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                y = np.asarray(d["labels"], dtype=np.int64)
            except FileNotFoundError:
                raise _missing(f"CIFAR-10 file {n}", base, download_hint=True) from None
            except Exception as e:  # truncated pickle, wrong keys, wrong size
                raise DataError(f"corrupt CIFAR-10 file {p} ({type(e).__name__}: {e}); delete it and use --download") from None
            xs.append(x)
            ys.append(y)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    tx, ty = read([f"data_batch_{i}" for i in range(1, 6)])
    vx, vy = read(["test_batch"])
    return Dataset("cifar10", tx, ty, vx, vy)


# ---- image-folder copies (cifar10-jpeg) ------------------------------------------------------------

def _find_split(root: Path, split: str) -> Path | None:
    for cand in (root / split, root / "cifar10-jpeg" / split):
        if cand.is_dir():
            return cand
    return None


def _list_images(split_dir: Path) -> tuple[list[Path], list[int]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if len(classes) != 10:
        raise DataError(f"{split_dir} should hold 10 class folders, found {len(classes)}: is --data-root right?")
    files, labels = [], []
    for label, c in enumerate(classes):
        imgs = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        files += imgs
        labels += [label] * len(imgs)
    return files, labels


def _decode_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode a CIFAR-layout image folder, caching the arrays (keyed by path, names and sizes)."""
    files, labels = _list_images(split_dir)
    if not files:
        raise DataError(f"no images under {split_dir}")
    key = hashlib.sha256()
    key.update(str(split_dir.resolve()).encode())
    for p in files:
        key.update(f"{p.parent.name}/{p.name}:{p.stat().st_size};".encode())
    cpath = cache_dir() / "decoded" / f"{split_dir.name}-{key.hexdigest()[:20]}.npz"
    if cpath.is_file():
        try:
            with np.load(cpath) as z:
                return torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
        except Exception:
            cpath.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted

    from torchvision.io import ImageReadMode, decode_image, read_file

    x = torch.empty((len(files), 3, 32, 32), dtype=torch.uint8)
    for i, p in enumerate(files):
        try:
            with warnings.catch_warnings():
                # torchvision 0.29 deprecates its decoders in favour of torchcodec; they still decode exactly
                warnings.simplefilter("ignore", DeprecationWarning)
                img = decode_image(read_file(str(p)), mode=ImageReadMode.RGB)
        except Exception as e:
            raise DataError(f"corrupt image {p} ({e}); re-extract the dataset") from None
        if tuple(img.shape) != (3, 32, 32):
            raise DataError(f"image {p} is {tuple(img.shape)}, expected 3x32x32: not a CIFAR-layout folder")
        x[i] = img
    y = torch.tensor(labels, dtype=torch.int64)
    cpath.parent.mkdir(parents=True, exist_ok=True)
    tmp = cpath.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x.numpy(), y=y.numpy())
    os.replace(tmp, cpath)
    return x, y


def _load_image_folder(root: Path, name: str) -> Dataset:
    splits = {s: _find_split(root, s) for s in ("train", "test")}
    if None in splits.values():
        raise _missing(f"{name} image folder (train/ and test/)", root, download_hint=False)
    tx, ty = _decode_folder(splits["train"])
    vx, vy = _decode_folder(splits["test"])
    return Dataset(name, tx, ty, vx, vy)


# ---- synthetic -----------------------------------------------------------------------------------

def synthetic(n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Seeded CIFAR-shaped data that a small network can learn: a smooth per-class pattern plus noise."""
    g = generator(seed, "synthetic")
    protos = F.interpolate(torch.rand(10, 3, 4, 4, generator=g), size=32, mode="bilinear", align_corners=False)

    def make(n):
        y = torch.arange(n) % 10
        y = y[torch.randperm(n, generator=g)]
        noise = torch.randn(n, 3, 32, 32, generator=g) * 0.25
        x = (protos[y] * 0.6 + 0.2 + noise).clamp(0, 1)
        return (x * 255).round().to(torch.uint8), y

    tx, ty = make(n_train)
    vx, vy = make(n_test)
    return Dataset("synthetic", tx, ty, vx, vy)


# ---- registry ------------------------------------------------------------------------------------

LOADERS: dict[str, Callable[..., Dataset]] = {
    "cifar10": lambda cfg, root: _load_cifar10(root, cfg.download),
    "cifar10-jpeg": lambda cfg, root: _load_image_folder(root, "cifar10-jpeg"),
    "synthetic": lambda cfg, root: synthetic(cfg.synthetic_train, cfg.synthetic_test),
}


def balanced_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Sorted indices of a class-balanced subset: ``n / classes`` images of each class, seeded."""
    classes = torch.unique(y)
    per = n // len(classes)
    g = generator(seed, "subset")
    picks = []
    for c in classes.tolist():
        idx = torch.nonzero(y == c).flatten()
        if len(idx) < per:
            raise DataError(f"train_subset {n} needs {per} images of class {c}, the data has {len(idx)}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per]])
    return torch.sort(torch.cat(picks)).values


def load(cfg) -> Dataset:
    """Load the dataset of a DataConfig (on the CPU), applying the training subset."""
    root = Path(cfg.data_root).expanduser() if cfg.data_root else default_root()
    ds = LOADERS[cfg.dataset](cfg, root)
    if cfg.train_subset:
        if cfg.train_subset > len(ds.train_y):
            raise DataError(f"train_subset {cfg.train_subset} exceeds the {len(ds.train_y)} training images")
        idx = balanced_subset(ds.train_y, cfg.train_subset, cfg.subset_seed)
        ds = Dataset(ds.name, ds.train_x[idx], ds.train_y[idx], ds.test_x, ds.test_y)
    return ds


# ---- on-device batches ---------------------------------------------------------------------------

class DeviceLoader:
    """Batches from a whole-dataset uint8 tensor on the device; normalisation fused into one affine."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool = False):
        self.x = x.to(device)
        self.y = y.to(device)
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std
        self._ar = torch.arange(32, device=device)

    def __len__(self) -> int:
        return len(self.y)

    def n_batches(self, batch_size: int) -> int:
        return -(-len(self) // batch_size)

    def _normalize(self, xb: torch.Tensor) -> torch.Tensor:
        return xb.to(torch.float32, memory_format=self.memory_format).mul_(self._scale).sub_(self._shift)

    def augment(self, xb: torch.Tensor, off: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Crop 32x32 at ``off`` (0..8, per sample, in the zero-padded 40x40 image) then flip where ``flip``."""
        xp = F.pad(xb, (4, 4, 4, 4))
        b = torch.arange(xb.shape[0], device=xb.device)
        rows = off[:, 0:1] + self._ar  # [B, 32]
        cols = torch.where(flip[:, None], off[:, 1:2] + 31 - self._ar, off[:, 1:2] + self._ar)
        return xp[b[:, None, None, None], torch.arange(3, device=xb.device)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]

    def train_epoch(self, seed: int, epoch: int, batch_size: int, augment: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches of epoch ``epoch`` (0-based); the last batch may be short (drop_last=False)."""
        n = len(self)
        order = torch.randperm(n, generator=generator(seed, "order", epoch)).to(self.device)
        if augment:
            ga = generator(seed, "augment", epoch)
            off = torch.randint(0, 9, (n, 2), generator=ga).to(self.device)
            flip = (torch.rand(n, generator=ga) < 0.5).to(self.device)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = self.x[idx]
            if augment:
                xb = self.augment(xb, off[i:i + batch_size], flip[i:i + batch_size])
            yield self._normalize(xb), self.y[idx]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self), batch_size):
            yield self._normalize(self.x[i:i + batch_size]), self.y[i:i + batch_size]
