"""Pipeline values as JSON: arrays as (nested) lists, JACC containers as dicts of them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["to_jsonable"]


def _array(a, max_elements: int | None):
    a = np.asarray(a)
    if a.dtype == bool:
        return a.tolist() if max_elements is None or a.size <= max_elements else \
            {"shape": list(a.shape), "count_true": int(a.sum())}
    a = a.astype(float)
    if max_elements is not None and a.size > max_elements:
        finite = a[np.isfinite(a)]
        stats = {k: (float(f(finite)) if finite.size else None)
                 for k, f in (("min", np.min), ("max", np.max), ("mean", np.mean))}
        return {"shape": list(a.shape), "summary": True, **stats}
    return _finite(a.tolist())


def _finite(v):
    # JSON has no NaN or infinity: a lost particle's NaN is written as null
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v if math.isfinite(v) else None


def to_jsonable(value, max_elements: int | None = None):
    """``value`` as JSON-ready data; arrays above ``max_elements`` elements are summarised
    as ``{"shape", "summary": true, "min", "max", "mean"}`` (None: written in full)."""
    if isinstance(value, (int, float, np.floating, np.integer, np.bool_)) or hasattr(value, "__array__"):
        return _array(value, max_elements)
    if hasattr(value, "model_dump"):  # a ReferenceParticle
        return value.model_dump()
    if dataclasses.is_dataclass(value):  # Equinox modules: Envelope, TwissInit, Twiss tables
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or f.name == "layout":
                continue
            out[f.name] = list(v) if f.name == "name" else to_jsonable(v, max_elements)
        return out
    if isinstance(value, dict):
        return {k: to_jsonable(v, max_elements) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, max_elements) for v in value]
    return str(value)
