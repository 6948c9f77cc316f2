"""Engine model (DESIGN.md layer 3): compile a lattice into pure, jittable JAX functions."""

from .compiler import KernelSpec, LineSpec, compile_lattice
from .engine import StaticParams, TrackingEngine, track
from .fuse import fuse_linear
from .presets import Preset, Xsuite, XsuiteExactBend, XsuiteFullEdge
from .tracker import MonitorData, TrackResult
