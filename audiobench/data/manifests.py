"""Dataset manifests: ``manifests/<name>.toml`` read into frozen, checked specs.

A manifest is everything dataset-specific: where the recordings come from (``[source] kind``, see
``audiobench.data.sources``; ``youtube`` when the table is absent), the classes, the list files (official
URL, sha256, where a mirror keeps them), and per split (any names) the list file, its format (the parser,
see ``audiobench.data.lists``), whether it has strong labels, the role it plays in training
(:func:`assign_roles`; ``audiobench.data.roles`` reads what registration recorded of it) and how splits that
share a list divide it. Stages never branch on a dataset name; they read a ``Manifest``.

Where manifests are found, first match wins:
0. ``<root>/<name>/manifest.toml`` when the storage root is known (``load_manifest(name, root=...)``): the
   manifest ``audiobench import NAME DIR`` writes for a folder of your own;
1. ``$AUDIOBENCH_MANIFESTS`` (a folder: your own datasets, or edited copies);
2. ``manifests/`` beside the ``audiobench`` package: a source checkout or ``pip install -e .``;
3. ``<prefix>/share/audiobench/manifests``: where a wheel (``pip install .``) puts the same files
   (``[tool.setuptools.data-files]`` in pyproject.toml).
``load_manifest`` also takes a path to any ``.toml`` file.
"""
from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Literal

from audiobench.core.records import DEFAULT_SOURCE, ClassInfo
from audiobench.core.errors import AudiobenchError
from audiobench.core.layout import resolve_root, validate_name
from audiobench.core.names import unknown_name
from audiobench.data.lists import class_format, clip_format
from audiobench.data.sources import get_source

MANIFESTS_ENV = "AUDIOBENCH_MANIFESTS"
OWN_MANIFEST = "manifest.toml"  # <root>/<name>/manifest.toml: a dataset made by `audiobench import NAME DIR`
PartitionMethod = Literal["stratified", "random"]
PARTITION_METHODS: tuple[str, ...] = ("stratified", "random")
ROLES = ("train", "val", "test")  # the parts a split may play in training (audiobench.data.roles)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def assign_roles(declared: Mapping[str, str | None], *, where: str = "") -> dict[str, str]:
    """Split name -> its declared role (or None), in order -> role -> split name, for the roles some split plays.

    >>> assign_roles({"fold1": "train", "fold2": "val", "eval": "test", "test": None})
    {'train': 'fold1', 'val': 'fold2', 'test': 'eval'}
    >>> assign_roles({"train": None, "val": None, "test": None})
    {'train': 'train', 'val': 'val', 'test': 'test'}
    """
    prefix = f"{where}: " if where else ""
    roles: dict[str, str] = {}
    for split, role in declared.items():
        if role is None:
            continue
        if role not in ROLES:
            raise AudiobenchError(f"{prefix}split {split!r} has role {role!r}; a role is one of {', '.join(ROLES)}")
        if role in roles:
            raise AudiobenchError(f"{prefix}splits {roles[role]!r} and {split!r} both have role {role!r}")
        roles[role] = split
    for role in ROLES:
        if role not in roles and role in declared:
            roles[role] = role
    return {role: roles[role] for role in ROLES if role in roles}


@dataclass(frozen=True)
class IndexFile:
    """One published list: kept as ``<dataset>/index/<name>`` once its sha256 matches."""

    name: str
    url: str | None  # None: a list written beside the manifest by ``audiobench import`` (kept in index/ only)
    sha256: str
    mirror_dir: str | None = None  # sub-folder of a mirror with one folder per source


@dataclass(frozen=True)
class ClassSource:
    """The class list: written in the manifest (``inline``), or parsed from an index file."""

    inline: tuple[ClassInfo, ...] | None = None
    file: str | None = None
    format: str | None = None


@dataclass(frozen=True)
class SplitSpec:
    """One split: its list file and format; ``share`` is its fraction of a list shared with other splits;
    ``role`` the part it declares in training (``train``, ``val``, ``test``; None: see ``Manifest.roles``)."""

    name: str
    file: str
    format: str
    strong: bool
    share: float | None = None
    role: str | None = None


@dataclass(frozen=True)
class Partition:
    """How splits sharing one list divide it (see ``audiobench.data.register.partition``)."""

    seed: int
    method: PartitionMethod = "stratified"


@dataclass(frozen=True)
class Manifest:
    name: str
    description: str
    classes: ClassSource
    index: tuple[IndexFile, ...]
    splits: tuple[SplitSpec, ...]
    partition: Partition | None
    path: Path
    source: str = DEFAULT_SOURCE  # the [source] kind: where the recordings come from

    @property
    def roles(self) -> dict[str, str]:
        """Role (``train``, ``val``, ``test``) -> the split that plays it (declared, else the split of that name)."""
        return assign_roles({s.name: s.role for s in self.splits}, where=str(self.path))

    def index_file(self, name: str) -> IndexFile:
        for spec in self.index:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def split(self, name: str) -> SplitSpec:
        for spec in self.splits:
            if spec.name == name:
                return spec
        raise AudiobenchError(f"dataset {self.name!r} has no split {name!r} "
                              f"(splits: {', '.join(s.name for s in self.splits)})")


def manifest_dirs() -> list[Path]:
    """The folders searched for ``<name>.toml``, in order (see the module docstring)."""
    dirs = [Path(os.environ[MANIFESTS_ENV]).expanduser()] if os.environ.get(MANIFESTS_ENV) else []
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file():  # not site-packages/, where "manifests/" could be anyone's
        dirs.append(checkout / "manifests")
    for prefix in (sysconfig.get_path("data"), sys.prefix, site.getuserbase()):
        dirs.append(Path(prefix) / "share" / "audiobench" / "manifests")
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def available_manifests() -> list[str]:
    """Names of the datasets a manifest exists for, e.g. ``['audioset-balanced', 'sl-dcase17']``."""
    return sorted({p.stem for d in manifest_dirs() if d.is_dir() for p in d.glob("*.toml")})


def find_manifest(name: str, *, root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/<name>/manifest.toml`` if there is one, else ``<name>.toml`` in :func:`manifest_dirs`."""
    validate_name(name)
    own = resolve_root(root) / name / OWN_MANIFEST
    if own.is_file():
        return own
    for folder in manifest_dirs():
        path = folder / f"{name}.toml"
        if path.is_file():
            return path
    raise unknown_name("manifest for dataset", name, available_manifests(),
                       then=f"write manifests/{name}.toml, or set ${MANIFESTS_ENV} to the folder holding it")


def load_manifest(name_or_path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Manifest:
    """A dataset's manifest, by name (``"sl-dcase17"``) or path to a TOML file; checked on load. A name is
    looked up under the storage ``root`` first (see the module docstring).

    >>> load_manifest("sl-dcase17").split("train").strong
    True
    """
    text = str(name_or_path)
    path = Path(text) if text.endswith(".toml") else find_manifest(text, root=root)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AudiobenchError(f"cannot read manifest {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AudiobenchError(f"{path}: not valid TOML ({exc})") from None
    return _build(data, path)


# -- reading and checking --------------------------------------------------------------------------------
def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], path: Path, where: str,
         default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise AudiobenchError(f"{path}: {where} needs `{key}`")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):  # bool is an int
        raise AudiobenchError(f"{path}: {where}.{key} has the wrong type ({type(value).__name__})")
    return value


def _build(data: dict[str, Any], path: Path) -> Manifest:
    name = validate_name(_get(data, "name", str, path, "the manifest"), where=str(path))
    if path.name == OWN_MANIFEST and name != path.parent.name:
        raise AudiobenchError(f"{path}: name {name!r} differs from its dataset folder {path.parent.name!r}")
    if path.name != OWN_MANIFEST and name != path.stem:
        raise AudiobenchError(f"{path}: name {name!r} differs from the file name {path.stem!r}")
    index = tuple(_index_file(t, path, i) for i, t in enumerate(_get(data, "index", list, path, "the manifest")))
    names = [f.name for f in index]
    if len(set(names)) != len(names):
        raise AudiobenchError(f"{path}: an index file is listed twice")
    classes = _classes(_get(data, "classes", dict, path, "the manifest"), path, set(names))
    splits = tuple(_split(split_name, t, path, set(names))
                   for split_name, t in _get(data, "splits", dict, path, "the manifest").items())
    if not splits:
        raise AudiobenchError(f"{path}: no [splits.*] table")
    partition = _partition(data.get("partition"), path)
    _check_shares(splits, partition, path)
    assign_roles({s.name: s.role for s in splits}, where=str(path))  # a bad role: an error now, not when training
    return Manifest(name, _get(data, "description", str, path, "the manifest", ""), classes, index, splits,
                    partition, path, _source(data.get("source"), path))


def _source(table: Any, path: Path) -> str:
    """The ``[source]`` table's ``kind`` (a registered source); ``youtube`` when the table is absent."""
    if table is None:
        return DEFAULT_SOURCE
    if not isinstance(table, dict):
        raise AudiobenchError(f"{path}: [source] is not a table")
    unknown = sorted(set(table) - {"kind"})
    if unknown:
        raise AudiobenchError(f"{path}: [source] has unknown key(s) {', '.join(unknown)} (it takes `kind`)")
    return get_source(_get(table, "kind", str, path, "[source]"), where=f"{path}: [source] kind").kind


def _index_file(table: Any, path: Path, i: int) -> IndexFile:
    where = f"[[index]] #{i + 1}"
    if not isinstance(table, dict):
        raise AudiobenchError(f"{path}: {where} is not a table")
    name = _get(table, "file", str, path, where)
    url = _get(table, "url", str, path, where, None)
    sha = _get(table, "sha256", str, path, where).lower()
    mirror_dir = _get(table, "mirror_dir", str, path, where, None)
    if not _FILE_NAME.match(name):
        raise AudiobenchError(f"{path}: {where}: file {name!r} must be a plain file name")
    if url is not None and not url.startswith(("http://", "https://")):
        raise AudiobenchError(f"{path}: {where}: url {url!r} is not http(s)")
    if not _SHA256.match(sha):
        raise AudiobenchError(f"{path}: {where}: sha256 {sha!r} is not 64 hex digits")
    if mirror_dir is not None and (Path(mirror_dir).is_absolute() or ".." in Path(mirror_dir).parts):
        raise AudiobenchError(f"{path}: {where}: mirror_dir {mirror_dir!r} must be a relative folder")
    return IndexFile(name, url, sha, mirror_dir)


def _classes(table: dict[str, Any], path: Path, index_names: set[str]) -> ClassSource:
    if "inline" in table:
        rows = _get(table, "inline", list, path, "[classes]")
        try:
            classes = tuple(ClassInfo(str(r["mid"]), str(r["name"])) for r in rows)
        except (TypeError, KeyError):
            raise AudiobenchError(f"{path}: [classes].inline entries need `mid` and `name`") from None
        if len({c.mid for c in classes}) != len(classes) or not classes:
            raise AudiobenchError(f"{path}: [classes].inline is empty or repeats a MID")
        return ClassSource(inline=classes)
    file = _get(table, "file", str, path, "[classes]")
    fmt = _get(table, "format", str, path, "[classes]")
    try:
        class_format(fmt)
    except AudiobenchError as exc:
        raise AudiobenchError(f"{path}: [classes]: {exc}") from None
    if file not in index_names:
        raise AudiobenchError(f"{path}: [classes] file {file!r} is not among the [[index]] files")
    return ClassSource(file=file, format=fmt)


def _split(name: str, table: Any, path: Path, index_names: set[str]) -> SplitSpec:
    validate_name(name, what="split name", where=str(path))
    where = f"[splits.{name}]"
    if not isinstance(table, dict):
        raise AudiobenchError(f"{path}: {where} is not a table")
    file = _get(table, "file", str, path, where)
    format_name = _get(table, "format", str, path, where)
    try:
        fmt = clip_format(format_name)
    except AudiobenchError as exc:
        raise AudiobenchError(f"{path}: {where}: {exc}") from None
    strong = _get(table, "strong", bool, path, where)
    share = _get(table, "share", (int, float), path, where, None)
    role = _get(table, "role", str, path, where, None)
    if file not in index_names:
        raise AudiobenchError(f"{path}: {where} file {file!r} is not among the [[index]] files")
    if strong and not fmt.strong:
        raise AudiobenchError(f"{path}: {where} says strong = true but format {fmt.name!r} has weak labels only")
    if share is not None and not 0 < share < 1:
        raise AudiobenchError(f"{path}: {where} share {share} is not between 0 and 1")
    return SplitSpec(name, file, fmt.name, strong, None if share is None else float(share), role)


def _partition(table: Any, path: Path) -> Partition | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise AudiobenchError(f"{path}: [partition] is not a table")
    seed = _get(table, "seed", int, path, "[partition]")
    method = _get(table, "method", str, path, "[partition]", "stratified")
    if method not in PARTITION_METHODS:
        raise AudiobenchError(f"{path}: [partition] method {method!r} is not one of {', '.join(PARTITION_METHODS)}")
    return Partition(seed, method)


def _check_shares(splits: tuple[SplitSpec, ...], partition: Partition | None, path: Path) -> None:
    """Splits sharing a file must divide all of it: a gap would drop clips silently, an overlap leak them."""
    by_file: dict[str, list[SplitSpec]] = {}
    for spec in splits:
        by_file.setdefault(spec.file, []).append(spec)
    for file, group in by_file.items():
        if len(group) == 1 and group[0].share is None:
            continue
        names = ", ".join(s.name for s in group)
        if any(s.share is None for s in group) or abs(sum(s.share for s in group) - 1) > 1e-9:
            raise AudiobenchError(f"{path}: splits {names} share {file}: each needs a `share`, summing to 1")
        if len({s.format for s in group}) != 1:
            raise AudiobenchError(f"{path}: splits {names} read {file} with different formats")
        if partition is None:
            raise AudiobenchError(f"{path}: splits {names} share {file}: add a [partition] table with a seed")
