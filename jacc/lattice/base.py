"""Base of the hardware description: the `Element` model, apertures and validation rules.

The description is plain Pydantic (no JAX arrays): what users edit and serialise. The engine
compiles it into Equinox modules (``jacc.engine``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class PhysicsWarning(UserWarning):
    """Base of the warnings JACC raises about questionable physics input (importers, models)."""


class LatticeError(ValueError):
    """A lattice description that cannot be built: names the element and the field."""


def _first_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(element)"
        parts.append(f"field '{loc}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


class Aperture(BaseModel):
    """Transverse aperture of an element; particles outside are flagged lost.

    ``shape`` is ``"rectangle"`` (half widths ``a`` horizontally, ``b`` vertically [m]),
    ``"ellipse"`` (semi-axes ``a``, ``b`` [m]) or ``"circle"`` (radius ``a`` [m]; ``b`` = ``a``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    shape: Literal["rectangle", "ellipse", "circle"] = Field(description="aperture shape")
    a: float = Field(gt=0, description="horizontal half width / semi-axis / radius [m]")
    b: float | None = Field(default=None, gt=0, description="vertical half width / semi-axis [m]")

    @model_validator(mode="after")
    def _fill_b(self):
        if self.b is None:
            if self.shape != "circle":
                raise ValueError(f"aperture shape '{self.shape}' needs both a and b")
            object.__setattr__(self, "b", self.a)
        return self


class Element(BaseModel):
    """One element definition: hardware parameters, MAD-X names, SI units.

    Common fields: ``name``, ``l`` [m], ``tilt`` [rad], ``dtilt`` [rad] (roll error added to
    ``tilt``), ``dx``/``dy`` [m] (misalignments), ``aperture``, ``diff_params`` (fields that
    become differentiable parameters of the engine model) and ``extra`` (per-code attributes
    JACC does not interpret).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)

    element_name: str = Field(frozen=True, description="element type (discriminator)")
    name: str = Field(min_length=1, description="definition name (MAD-X label)")
    l: float = Field(default=0.0, ge=0.0, description="length [m]")
    tilt: float = Field(default=0.0, description="roll angle about s [rad]")
    dtilt: float = Field(default=0.0, description="roll error added to tilt [rad]")
    dx: float = Field(default=0.0, description="horizontal misalignment [m]")
    dy: float = Field(default=0.0, description="vertical misalignment [m]")
    aperture: Aperture | None = Field(default=None, description="transverse aperture")
    diff_params: list[str] = Field(default_factory=list, description="fields flagged differentiable")
    extra: dict[str, Any] = Field(default_factory=dict, description="per-code attributes kept as is")

    thin: ClassVar[bool] = False  # True: the element has no length

    @model_validator(mode="wrap")
    @classmethod
    def _name_the_element(cls, data, handler):
        # Pydantic's own messages name the field but not the element; users need both.
        try:
            return handler(data)
        except ValidationError as err:
            name = data.get("name", "?") if isinstance(data, dict) else getattr(data, "name", "?")
            kind = cls.model_fields["element_name"].default
            raise ValueError(f"{kind} '{name}': {_first_error(err)}") from None

    @model_validator(mode="after")
    def _check_element(self):
        if self.thin and self.l != 0.0:
            raise self.error(f"field 'l': a {self.element_name} is thin, l must be 0 (got {self.l})")
        bad = [p for p in self.diff_params if p not in self.numeric_fields()]
        if bad:
            raise self.error(
                f"field 'diff_params': {bad} are not numeric fields of {self.element_name}; "
                f"valid: {list(self.numeric_fields())}"
            )
        return self

    def error(self, msg: str) -> ValueError:
        """A ValueError whose message names this element (type and name) first."""
        return ValueError(f"{self.element_name} '{self.name}': {msg}")

    @classmethod
    def numeric_fields(cls) -> tuple[str, ...]:
        """Names of the fields that can be flagged differentiable (floats and float lists)."""
        out = _NUMERIC.get(cls)
        if out is None:  # computed once per class: the compiler asks for every element
            out = tuple(f for f, info in cls.model_fields.items()
                        if info.annotation in (float, list[float]) or info.annotation == (float | None))
            _NUMERIC[cls] = out
        return out

    @property
    def path_length(self) -> float:
        """Length the reference orbit travels through the element [m] (arc length)."""
        return self.l

    def with_updates(self, **fields) -> "Element":
        """A validated copy with ``fields`` replaced."""
        data = self.model_dump()
        data.update(fields)
        return type(self).model_validate(data)


_NUMERIC: dict[type, tuple[str, ...]] = {}


def check_finite_list(values: list[float], field: str) -> list[float]:
    """Reject NaN or infinite entries of a list field (Pydantic checks scalar floats only)."""
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"field '{field}' must hold finite numbers, got {values}")
    return values


__all__ = ["Aperture", "Element", "LatticeError", "PhysicsWarning", "check_finite_list", "field_validator"]
