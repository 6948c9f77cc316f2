"""`XsuiteStage`: an exported ``xt.Line`` as a differentiable stage of a JAX program.

The line is exported once (`XsuiteExporter`) and its tracker built once. When parameter
values change, only the placements they reach are converted again, and the new xtrack
elements' settings are written into the tracked line in place (xtrack compiles nothing
again). A change that alters the line's layout (e.g. an offset bend growing its
``_shift_in``/``_shift_out`` translations) rebuilds the line instead.
"""

from __future__ import annotations

import numpy as np

from jacc.particles import xsuite_particles_kwargs

from ._names import NameRegistry
from ._phase_space import xsuite_arrays
from ._stage import Stage, StageConfig
from ._xsuite import XsuiteExporter, XsuiteExporterConfig, _Context, _convert

__all__ = ["XsuiteStage"]


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def _write_settings(dst, src) -> bool:
    """Give xtrack element ``dst`` the settings of ``src`` (same class); True if they match
    afterwards. Settings are the constructor's keywords (``to_dict``), which xtrack sets
    through its own properties (a bend's ``h`` and ``k0`` follow its ``angle``)."""
    if type(dst) is not type(src):
        return False
    new, cur = src.to_dict(), dst.to_dict()
    for key in list(new) + [k for k in cur if k not in new]:
        if key == "__class__":
            continue
        value = getattr(src, key)
        if not _same(getattr(dst, key), value):
            setattr(dst, key, value)
    after = dst.to_dict()
    return after.keys() == new.keys() and all(_same(after[k], new[k]) for k in new if k != "__class__")


class XsuiteStage(Stage):
    """One pass through the Xsuite line of ``lat`` as a stage: ``y = stage(values, x)``.

    Example::

        stage = XsuiteStage(lat, rp, params=["kq01", "qf.k1"],
                            config=StageConfig(vjp="fd", fd_rel_step=1e-6, fd_abs_step=1e-8))
        y = stage(jnp.array([1.2, 3.4]), x)          # x: (n, 6) MAD-X coordinates
        g = jax.grad(lambda v: jnp.sum(stage(v, x) ** 2))(values)

    Args:
        lat: the lattice (copied).
        rp: the reference particle.
        params: knob names or ``"element.field"`` names (see `Stage`).
        config: a `StageConfig` (finite differences or a surrogate for the derivative).
        exporter_config: the `XsuiteExporterConfig` of the line (default: xtrack's default
            models, which JACC's ``jacc.Xsuite()`` preset reproduces).

    Lost particles (apertures) come back as NaN rows.
    """

    code = "Xsuite"
    # xtrack's passes carry ~1e-14 relative rounding (measured against JACC on a FODO
    # line: 7e-15 m at mm amplitudes); for a loss with signed weights 1e-5 gave 2e-7
    # relative gradient errors, 1e-6 5e-6, 1e-3 6e-6 (truncation)
    default_fd_rel_step = 1e-5

    def __init__(self, lat, rp, params, config: StageConfig | None = None,
                 exporter_config: XsuiteExporterConfig | None = None):
        self.exporter_config = XsuiteExporterConfig() if exporter_config is None else exporter_config
        if not isinstance(self.exporter_config, XsuiteExporterConfig):
            raise TypeError(f"XsuiteStage: exporter_config must be an XsuiteExporterConfig, "
                            f"got {type(self.exporter_config).__name__}")
        super().__init__(lat, rp, params, config)
        self._line = None
        self._names: list[list[str]] = []
        self._applied: np.ndarray | None = None

    @property
    def line(self):
        """The tracked ``xt.Line`` (built on first use, with the values last tracked)."""
        if self._line is None:
            self._build()
        return self._line

    def _build(self) -> None:
        lat, rp = self._params.lat, self.reference_particle
        line = XsuiteExporter(config=self.exporter_config).write_lattice(lat, rp)
        line.build_tracker()
        ctx, reg = _Context(self.exporter_config, rp, lat.length), NameRegistry()
        self._names = [[name for name, _ in _convert(ctx, reg, lat.element_at(i))]
                       for i in range(len(lat.line))]
        self._line = line

    def _update(self) -> None:
        """Write the changed placements into the line (or rebuild it if its layout changed)."""
        lat, line = self._params.lat, self._line
        ctx = _Context(self.exporter_config, self.reference_particle, lat.length)
        for i in self._params.placements:
            pairs = _convert(ctx, NameRegistry(), lat.element_at(i))
            if len(pairs) != len(self._names[i]):
                self._build()
                return
            for name, (_, obj) in zip(self._names[i], pairs):
                if not _write_settings(line.element_dict[name], obj):
                    self._build()
                    return

    def _set(self, values: np.ndarray) -> None:
        if self._applied is not None and np.array_equal(values, self._applied):
            return
        self._params.apply(values)
        if self._line is None:
            self._build()
        else:
            self._update()
        self._applied = np.array(values, copy=True)

    def _track(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        import xtrack as xt

        self._set(values)
        rp = self.reference_particle
        parts = xt.Particles(**xsuite_particles_kwargs(x, rp))
        self._line.track(parts)
        coords, alive, _ = xsuite_arrays(parts, rp)
        coords[~alive] = np.nan
        return coords
