"""Port-by-port check of a pipeline: which output feeds each input, and whether it fits."""

from __future__ import annotations

from typing import NamedTuple

from .models._ports import check_connection

__all__ = ["Source", "connect"]


class Source(NamedTuple):
    """Where a value comes from: ``label`` (``model.port`` or ``pipeline input 'x'``), its
    port and the reference particle that port resolves to."""

    label: str
    port: object
    rp: object


def connect(models) -> tuple[dict[str, Source], dict[str, list[Source]]]:
    """``(visible at the end, external inputs)``, checking every connection on the way.

    A model's input is fed by the nearest upstream output of the same name that reached
    it (through models that pass extra inputs through); an input nobody upstream produces
    is an external input of the pipeline. Raises ``ValueError`` naming both ports when a
    connection does not fit, or two models taking the same external input disagree on it.
    """
    visible: dict[str, Source] = {}
    external: dict[str, list[Source]] = {}
    for m in models:
        for name, port in m.inputs.items():
            label = f"{m.name}.{name}"
            rp = m.port_reference(port)
            if name in visible:
                src = visible[name]
                check_connection(src.label, src.port, src.rp, label, port, rp)
                continue
            users = external.setdefault(name, [])
            if users:
                first = users[0]
                try:
                    check_connection(first.label, first.port, first.rp, label, port, rp)
                except ValueError as err:
                    raise ValueError(f"pipeline input '{name}' feeds '{first.label}' and '{label}', "
                                     f"which differ: {str(err).split(': ', 1)[1]}") from None
            users.append(Source(label, port, rp))
        passes = m.extra_inputs_allowed and m.extra_inputs_behavior == "passthrough"
        if not passes:
            visible = {}
        for name, port in m.outputs.items():
            visible[name] = Source(f"{m.name}.{name}", port, m.port_reference(port))
    return visible, external
