"""Saving and loading surrogates: the weights as an ``.eqx`` file (`eqx.tree_serialise_leaves`)
beside a JSON header (``.json``, same stem) with everything needed to rebuild the module:
port names and shapes, layer widths, activation, and a SHA-256 of the ``.eqx`` file.

A loaded surrogate needs no code from the run that trained it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import equinox as eqx
import jax

from ._model import Surrogate

__all__ = ["FORMAT", "header_path", "load", "save"]

FORMAT = "jacc.surrogate"
VERSION = 1


def _eqx_path(path) -> Path:
    path = Path(path)
    if path.suffix == "":
        return path.with_suffix(".eqx")
    if path.suffix != ".eqx":
        raise ValueError(f"surrogate files end in .eqx, got {str(path)!r}")
    return path


def header_path(path) -> Path:
    """The JSON header beside surrogate file ``path`` (``model.eqx`` -> ``model.json``)."""
    return _eqx_path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(sur: Surrogate, path, *, history=None, metadata: dict | None = None) -> Path:
    """Write ``sur`` to ``path`` (``.eqx``, added if missing) and its header beside it.

    Args:
        sur: the surrogate.
        path: the ``.eqx`` file to write.
        history: the `TrainHistory` of `fit`: its hyper-parameters and final losses go into
            the header's ``training`` entry.
        metadata: JSON-serialisable extras kept in the header (e.g. the training source).

    Returns:
        The path of the ``.eqx`` file.
    """
    if not isinstance(sur, Surrogate):
        raise TypeError(f"save: expected a jacc.surrogate.Surrogate, got {type(sur).__name__}")
    path = _eqx_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    eqx.tree_serialise_leaves(path, sur)
    header = {
        "format": FORMAT, "version": VERSION,
        "input_names": list(sur.input_names),
        "output_ports": [{"name": n, "shape": list(s)} for n, s in sur.output_ports],
        "hidden": list(sur.hidden), "activation": sur.activation, "dtype": "float64",
        "eqx_sha256": _sha256(path),
        "training": history.summary() if history is not None else {},
        "metadata": metadata or {},
    }
    header_path(path).write_text(json.dumps(header, indent=2) + "\n")
    return path


def _read_header(path: Path) -> dict:
    hpath = header_path(path)
    for p in (path, hpath):
        if not p.is_file():
            raise FileNotFoundError(f"surrogate file {str(p)!r} not found (a saved surrogate is "
                                    f"a .eqx file and a .json header beside it)")
    try:
        header = json.loads(hpath.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"surrogate header {str(hpath)!r} is not valid JSON: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{str(hpath)!r} is not a {FORMAT} header (its 'format' is "
                         f"{header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("version") != VERSION:
        raise ValueError(f"{str(hpath)!r}: header version {header.get('version')!r}, this JACC "
                         f"reads version {VERSION}")
    missing = [k for k in ("input_names", "output_ports", "hidden", "activation") if k not in header]
    if missing:
        raise ValueError(f"surrogate header {str(hpath)!r} lacks {missing}")
    return header


def load(path) -> Surrogate:
    """The surrogate saved at ``path`` (``.eqx``) with `save`.

    Raises:
        FileNotFoundError: the ``.eqx`` file or its ``.json`` header is missing.
        ValueError: the header is malformed, or does not describe the ``.eqx`` file (another
            surrogate's header, or a file changed since it was saved).
    """
    path = _eqx_path(path)
    header = _read_header(path)
    digest = header.get("eqx_sha256")
    if digest is not None and digest != _sha256(path):
        raise ValueError(f"{str(path)!r} does not match its header {str(header_path(path))!r} "
                         f"(SHA-256 differs): the weights were replaced or the header belongs "
                         f"to another surrogate")
    try:
        like = Surrogate(header["input_names"],
                         {p["name"]: tuple(p["shape"]) for p in header["output_ports"]},
                         header["hidden"], key=jax.random.PRNGKey(0),
                         activation=header["activation"])
        return eqx.tree_deserialise_leaves(path, like)
    except (ValueError, RuntimeError, TypeError, KeyError, EOFError) as e:
        raise ValueError(f"{str(path)!r} does not match its header {str(header_path(path))!r}: "
                         f"{e}") from None
