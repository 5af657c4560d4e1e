"""A name that names nothing (a dataset, run, study, variant, feature set): the closest existing one and the others.

Every command that takes a name builds its "no such thing" message here, so a typo (``train synt``) gets the
same answer everywhere: the name it probably meant, then every name there is, instead of a hint to create
the thing it misspelt.

>>> print(unknown_name("dataset", "synt", ["synth", "synth-tiny", "pets"]))
no dataset 'synt'; did you mean 'synth'? (others: pets, synth-tiny)
>>> print(unknown_name("variant", "att-sel", ["noatt-weak", "att-self"], where="--variant"))
--variant: no variant 'att-sel'; did you mean 'att-self'? (others: noatt-weak)
>>> print(unknown_name("run", "x", [], then="train one with `audiobench train`"))
no run 'x' (there are none); train one with `audiobench train`
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from audiobench.core.errors import AudiobenchError

_LISTED = 12  # names listed at most; a root with hundreds of runs gets a count for the rest


def closest(name: str, known: Iterable[str]) -> str | None:
    """The existing name most like ``name``: the only one it begins (``kaldi`` for ``kaldi-fbank-128-44212f8f``),
    else difflib's closest (ratio at least 0.6), else None."""
    names = list(known)
    starts = [n for n in names if n.startswith(name) and n != name]
    if len(starts) == 1:
        return starts[0]
    found = difflib.get_close_matches(name, names, n=1)
    return found[0] if found else None


def name_hint(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'x'? (others: a, b)"``, ``"(known: a, b)"`` or ``"(there are none)"``, for ``name``."""
    names = sorted(set(known))
    best = closest(name, names)
    others = [n for n in names if n != best]
    listed = ", ".join(others[:_LISTED]) + (f" and {len(others) - _LISTED} more" if len(others) > _LISTED else "")
    if best is not None:
        return f"did you mean {best!r}?" + (f" (others: {listed})" if others else "")
    return f"(known: {listed})" if others else "(there are none)"


def unknown_name(what: str, name: str, known: Iterable[str], *, under: object = None, where: str = "",
                 then: str = "") -> AudiobenchError:
    """The error for a ``what`` (``"dataset"``, ``"run"``, ...) named ``name`` that is not among ``known``.

    ``under``: the folder looked in (``no dataset 'x' under ROOT``); ``where``: a prefix (the option or file); ``then``: how to make one (a command), said only when
    no existing name is close, since a close one is the likelier fix.
    """
    names = list(known)
    hint = name_hint(name, names)
    typo = closest(name, names) is not None
    prefix = f"{where}: " if where else ""
    place = f" under {under}" if under is not None else ""
    return AudiobenchError(f"{prefix}no {what} {name!r}{place}{'; ' if typo else ' '}{hint}"
                           + (f"; {then}" if then and not typo else ""))
