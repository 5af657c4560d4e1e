"""The feature extractor seam: what every extractor declares, and the registry that names them.

An extractor turns a mono waveform at its sample rate into ``[frames, dims]`` float32 features. It declares
its frame hop and window (samples), the value a padded frame holds (its features of digital silence) and the
rule turning event times into frame labels; its parameters, a frozen dataclass of plain values, are hashed
with the storage dtype into the feature id, the folder name under ``features/``. The split files record the
extractor's name, dims and parameters, so readers (the Dataset, the network, inference, figures) take
everything from the file. Adding one is one file (docs/architecture.md, "Adding a feature extractor"):

>>> from dataclasses import dataclass
>>> import numpy as np
>>> @dataclass(frozen=True)
... class LoudnessParams:
...     sample_rate: int = 16_000
...     frame_length: int = 400
...     frame_shift: int = 160
>>> class Loudness(Extractor):
...     name = "doc-loudness"
...     Params = LoudnessParams
...     dims = 16
...     padding_value = 0.0
...     def extract(self, waveform):
...         frames = self.frames(waveform)              # [n, 400] views, no centring
...         return np.repeat((frames ** 2).mean(axis=1, keepdims=True), 16, axis=1).astype(np.float32)
>>> _ = register_extractor(Loudness)
>>> get_extractor("doc-loudness").feature_id()   # doctest: +ELLIPSIS
'doc-loudness-...'
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from audiobench.core.errors import AudiobenchError
from audiobench.core.names import unknown_name

FeatureDtype = Literal["float32", "float16"]  # how the store keeps values; extractors compute float32
DTYPES: tuple[str, ...] = get_args(FeatureDtype)
DEFAULT_EXTRACTOR = "vggish-logmel"
# The extractors that ship with audiobench, imported on first use of the registry (they import this module).
_BUILTIN = {"vggish-logmel": "audiobench.features.vggish", "kaldi-fbank-128": "audiobench.features.kaldi"}
# Split-file attributes that are not an extractor parameter: a parameter of the same name would overwrite one.
RESERVED_ATTRS = frozenset({
    "dataset", "split", "class_mids", "class_names", "has_strong", "feature_id", "dtype", "padding_value",
    "audiobench_version", "strong_frame_rule", "created", "complete", "extractor", "dims", "crc32", "shard_id",
})
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")  # part of a folder name: <name>-<8 hex digits>
_PLAIN = (bool, int, float, str)  # what an HDF5 attribute stores and reads back as itself


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise AudiobenchError(f"unsupported feature dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    return dtype


class Extractor(ABC):
    """One feature recipe with its parameters: ``extract(waveform) -> [frames, dims]`` float32.

    A subclass sets ``name`` (lower-case letters, digits and '-'), ``Params`` (a frozen dataclass of bools,
    ints, floats and strings, with defaults; it must have ``sample_rate``, ``frame_length`` and
    ``frame_shift`` fields in samples, or override the properties of the same names), ``dims`` and
    ``padding_value`` (class attributes or properties), and :meth:`extract`. The frame rule
    (:meth:`num_frames`, :meth:`event_frames`) is that of whole frames without centring; override both for
    another. Instances compare and hash by name and parameters, and pickle (workers receive them).
    """

    name: ClassVar[str]
    Params: ClassVar[type]
    dims: int  # features per frame
    padding_value: float  # what a padded frame holds: the features of digital silence
    # Each frame's features depend on that frame's samples only, so a long recording can be featurized block
    # by block (``audiobench predict`` does); a recipe that looks at the whole waveform says False.
    frame_local: bool = True

    def __init__(self, params: Any = None) -> None:
        if params is None:
            params = self.Params()
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be a {self.Params.__name__}, got {type(params).__name__}")
        self.params = params

    # -- what the recipe declares --------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The rate the waveform must have, Hz."""
        return int(self.params.sample_rate)

    @property
    def frame_length(self) -> int:
        """Samples per frame (the analysis window)."""
        return int(self.params.frame_length)

    @property
    def frame_shift(self) -> int:
        """Samples from one frame's start to the next (the hop)."""
        return int(self.params.frame_shift)

    @property
    def frame_seconds(self) -> float:
        """The hop in seconds (the time axis of figures)."""
        return self.frame_shift / self.sample_rate

    @abstractmethod
    def extract(self, waveform: np.ndarray) -> np.ndarray:
        """``[num_frames(len(waveform)), dims]`` features of a checked 1-D float waveform at ``sample_rate``
        (:meth:`check_waveform` has run: it is finite and holds at least one frame)."""

    # -- the frame rule ------------------------------------------------------------------------------------
    def num_frames(self, samples: int) -> int:
        """Frames of ``samples`` samples: whole frames only, no centring, no padding; 0 when too short."""
        if samples < self.frame_length:
            return 0
        return 1 + (samples - self.frame_length) // self.frame_shift

    def event_frames(self, onset: np.ndarray | float, offset: np.ndarray | float,
                     n_frames: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """First and stop frame (half-open) labelled by events ``[onset, offset)`` seconds, per event.

        Frame ``t`` covers samples ``[shift t, shift t + length)``; it is labelled when that span overlaps the
        event. A zero-length event ("present, not localised") labels no frame; frames past ``n_frames`` are
        padding and are never labelled.
        """
        return overlap_frames(onset, offset, n_frames, sample_rate=self.sample_rate,
                              frame_length=self.frame_length, frame_shift=self.frame_shift)

    def frames(self, waveform: np.ndarray) -> np.ndarray:
        """``[num_frames, frame_length]`` read-only views of the waveform's frames, as the frame rule cuts them."""
        n = self.num_frames(len(waveform))
        view = np.lib.stride_tricks.sliding_window_view(waveform, self.frame_length)[::self.frame_shift][:n]
        return view

    # -- identity and storage ------------------------------------------------------------------------------
    def feature_id(self, dtype: FeatureDtype = "float32") -> str:
        """``<name>-<8 hex digits>``: a SHA-256 of the parameters and the storage dtype (the folder name)."""
        check_dtype(dtype)
        blob = json.dumps({**dataclasses.asdict(self.params), "dtype": dtype}, sort_keys=True).encode()
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:8]}"

    def attrs(self) -> dict[str, Any]:
        """What a split file records about its extractor: name, dims, padding value and every parameter."""
        return {"extractor": self.name, "dims": int(self.dims), "padding_value": float(self.padding_value),
                **dataclasses.asdict(self.params)}

    def check_waveform(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        """The 1-D samples of a mono float waveform, or an :class:`AudiobenchError` saying what is wrong."""
        return check_waveform(waveform, sample_rate, expected_rate=self.sample_rate, frame_length=self.frame_length)

    def __call__(self, waveform: np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """Check, then extract: ``extractor(samples, 16000)`` -> ``[frames, dims]`` float32."""
        x = self.check_waveform(waveform, self.sample_rate if sample_rate is None else sample_rate)
        return self.extract(x)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params == self.params

    def __hash__(self) -> int:
        return hash((self.name, self.params))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def overlap_frames(onset: np.ndarray | float, offset: np.ndarray | float, n_frames: np.ndarray | int, *,
                   sample_rate: int, frame_length: int, frame_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlap rule of :meth:`Extractor.event_frames`: frame ``t`` is labelled when
    ``shift t < offset * sr`` and ``shift t + length > onset * sr``."""
    on = np.asarray(onset, dtype=np.float64) * sample_rate
    off = np.asarray(offset, dtype=np.float64) * sample_rate
    first = np.maximum(np.floor((on - frame_length) / frame_shift).astype(np.int64) + 1, 0)
    stop = np.minimum(np.ceil(off / frame_shift).astype(np.int64), np.asarray(n_frames, dtype=np.int64))
    empty = (off <= on) | (stop <= first)
    first = np.where(empty, 0, first)
    stop = np.where(empty, 0, stop)
    return first, stop


def check_waveform(waveform: np.ndarray, sample_rate: int, *, expected_rate: int, frame_length: int) -> np.ndarray:
    """The 1-D samples of a mono float waveform, or an :class:`AudiobenchError` saying what is wrong."""
    if sample_rate != expected_rate:
        raise AudiobenchError(f"sample rate {sample_rate} Hz, expected {expected_rate} Hz "
                              "(resample first: `audiobench resample`)")
    x = np.asarray(waveform)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1:
        raise AudiobenchError(f"expected mono samples of shape [n] or [1, n], got shape {tuple(x.shape)}")
    if not np.issubdtype(x.dtype, np.floating):
        raise AudiobenchError(f"expected floating-point samples in [-1, 1], got dtype {x.dtype}")
    if x.size < frame_length:
        raise AudiobenchError(f"too short: {x.size} samples, at least {frame_length} needed "
                              f"(one {1000 * frame_length / expected_rate:g} ms frame)")
    if not np.isfinite(x.sum()) and not np.isfinite(x).all():  # the sum is the fast test; inf/nan propagate
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise AudiobenchError(f"non-finite sample {x[bad]} at index {bad}")
    return x


# -- torch for extractors ----------------------------------------------------------------------------------
_torch_threads_lock = threading.Lock()
_torch_threads_users = 0
_torch_threads_saved = 1


@contextmanager
def single_threaded_torch() -> Iterator[ModuleType]:
    """torch, with its intra-op pool held at one thread while any caller is inside.

    Extractors run their FFTs in torch (MKL: about twice pocketfft's speed in float64), and their window
    products and mel matmuls too (numpy's go to OpenBLAS and its own threads). One 10 s clip is too small
    to share: a second thread only spins, and on a busy machine that spinning made a call 5 to 20 times slower.
    Parallelism comes from featurizing clips in parallel (joblib) instead. The caller's own setting is
    restored when the last concurrent user leaves, so a notebook's training keeps its threads.
    """
    global _torch_threads_users, _torch_threads_saved
    import torch

    with _torch_threads_lock:
        if _torch_threads_users == 0:
            _torch_threads_saved = torch.get_num_threads()
            if _torch_threads_saved != 1:
                torch.set_num_threads(1)
        _torch_threads_users += 1
    try:
        yield torch
    finally:
        with _torch_threads_lock:
            _torch_threads_users -= 1
            if _torch_threads_users == 0 and _torch_threads_saved != 1:
                torch.set_num_threads(_torch_threads_saved)


# -- the registry ----------------------------------------------------------------------------------------------
_registry: dict[str, type[Extractor]] = {}
_lock = threading.Lock()
_builtins_loaded = False


def register_extractor(cls: type[Extractor]) -> type[Extractor]:
    """Make ``cls`` available by its name (``featurize --features NAME``); usable as a class decorator.

    Registering the same class again is a no-op; another class under a taken name is refused. The class is
    checked here, so a mistake shows at import rather than halfway through a featurize run.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise AudiobenchError(f"{cls.__name__}: extractor name {name!r} must be 1-40 lower-case letters, digits "
                              "and '-', starting with a letter or digit")
    params = getattr(cls, "Params", None)
    if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
        raise AudiobenchError(f"{cls.__name__}: Params must be a frozen dataclass")
    try:
        defaults = params()
    except TypeError as exc:
        raise AudiobenchError(f"{cls.__name__}: every field of {params.__name__} needs a default ({exc})") from None
    for field in dataclasses.fields(params):
        value = getattr(defaults, field.name)
        if field.name in RESERVED_ATTRS:
            raise AudiobenchError(f"{cls.__name__}: parameter {field.name!r} would overwrite the split-file "
                                  f"attribute of that name; rename it")
        if not isinstance(value, _PLAIN):
            raise AudiobenchError(f"{cls.__name__}: parameter {field.name!r} is a {type(value).__name__}; HDF5 "
                                  "attributes keep bool, int, float and str only")
    with _lock:
        known = _registry.get(name)
        if known is not None and known is not cls and _qualname(known) != _qualname(cls):
            raise AudiobenchError(f"feature extractor {name!r} is already registered ({_qualname(known)})")
        _registry[name] = cls
    return cls


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN.values():
            importlib.import_module(module)
        _builtins_loaded = True


def extractors() -> tuple[str, ...]:
    """The registered extractor names: the built-in ones first (the default first), then others in the order
    they were registered."""
    _load_builtins()
    return (*_BUILTIN, *(name for name in _registry if name not in _BUILTIN))


def get_extractor(name: str = DEFAULT_EXTRACTOR, params: Any = None) -> Extractor:
    """The extractor registered as ``name``, with ``params`` (default: its defaults); an error lists the names."""
    _load_builtins()
    try:
        cls = _registry[name]
    except (KeyError, TypeError):
        raise unknown_name("feature extractor", str(name), extractors()) from None
    return cls(params)


def extractor_of(attrs: Mapping[str, Any], *, where: str = "") -> Extractor:
    """The extractor a split file (its HDF5 attributes) was written with.

    A file without an ``extractor`` attribute was written before extractors were named: VGGish log-mel, 64 bands.
    """
    prefix = f"{where}: " if where else ""
    name = _plain(attrs.get("extractor", DEFAULT_EXTRACTOR))
    _load_builtins()
    if name not in _registry:
        raise AudiobenchError(f"{prefix}written by feature extractor {name!r}, which is not registered here "
                              f"(registered: {', '.join(extractors())}); import the module that registers it")
    cls = _registry[name]
    fields = dataclasses.fields(cls.Params)
    missing = [f.name for f in fields if f.name not in attrs]
    if missing:
        raise AudiobenchError(f"{prefix}lacks the {name} parameter(s) {', '.join(missing)}; rerun `audiobench "
                              "featurize` to rewrite it")
    extractor = cls(cls.Params(**{f.name: _plain(attrs[f.name]) for f in fields}))
    if "dims" in attrs and int(attrs["dims"]) != extractor.dims:
        raise AudiobenchError(f"{prefix}declares {int(attrs['dims'])} dims, {name} with its parameters gives "
                              f"{extractor.dims}")
    return extractor


def _plain(value: object) -> object:
    """An HDF5 attribute as a plain Python value (numpy scalars -> int/float/bool/str, bytes -> str)."""
    if isinstance(value, np.generic):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else value
