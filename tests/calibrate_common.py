"""Shared, compiled-once objects of the calibration tests (one pytest process builds each once)."""

import functools

import jacc


@functools.cache
def iota():
    """``(lat, rp, correctors)``: IOTA and its 20 H/V correctors."""
    lat, rp = jacc.lattices.iota()
    corr = [p.key for p in lat.elements if p.element_name == "HVCorrector"]
    return lat, rp, corr


@functools.cache
def simulator():
    """A `MeasurementSimulator` of IOTA (quadrupole gradients as parameters)."""
    from jacc.calibrate import MeasurementSimulator

    lat, rp, corr = iota()
    return MeasurementSimulator(lat, rp, correctors=corr)


@functools.cache
def bayesian(quad_rel: float = 0.01):
    """`BayesianLoco` of IOTA with a prior on the gradient errors only."""
    from jacc.calibrate import BayesianLoco, LocoPriors

    lat, rp, _ = iota()
    return BayesianLoco(lat, rp, simulator().layout, priors=LocoPriors(quad_rel=quad_rel))
