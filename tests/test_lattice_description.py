"""The hardware description: lossless JSON (property-based, every element type) and errors.

Every bad input must be refused with a message naming the element and the field.
"""

from __future__ import annotations

import math
import typing

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jacc.lattice import (ELEMENT_TYPES, Drift, Element, Knob, Lattice, LatticeError, Multipole,
                          Quadrupole, SBend, element_from_dict)

FINITE = st.floats(allow_nan=False, allow_infinity=False)
BOUNDED = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)  # for knob arithmetic
NONNEG = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
KNOB_NAMES = st.from_regex(r"k[a-z0-9_]{0,6}", fullmatch=True)  # never a function or constant
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), FINITE, TEXT,
                        st.lists(FINITE, max_size=3))
EXTRA = st.dictionaries(TEXT, JSON_VALUES, max_size=3)
COMMON = {"tilt", "dtilt", "dx", "dy"}  # unconstrained floats every element has


def _float_strategy(info):
    bounds = {type(m): m for m in info.metadata}
    if annotated_types.Gt in bounds:
        return POSITIVE
    if annotated_types.Ge in bounds:
        return NONNEG
    return FINITE


def _aperture():
    return st.one_of(
        st.none(),
        st.builds(lambda a: {"shape": "circle", "a": a}, POSITIVE),
        st.builds(lambda s, a, b: {"shape": s, "a": a, "b": b},
                  st.sampled_from(["rectangle", "ellipse"]), POSITIVE, POSITIVE))


@st.composite
def elements(draw, cls):
    """A random valid element of type ``cls``: every field drawn within its constraints."""
    data = {"name": draw(NAMES)}
    for fname, info in cls.model_fields.items():
        ann = info.annotation
        if fname in ("element_name", "name"):
            continue
        if fname == "aperture":
            data[fname] = draw(_aperture())
        elif fname == "diff_params":
            data[fname] = draw(st.lists(st.sampled_from(cls.numeric_fields()), unique=True))
        elif fname == "extra":
            data[fname] = draw(EXTRA)
        elif ann is float:
            data[fname] = draw(_float_strategy(info))
        elif ann == (float | None):
            data[fname] = draw(st.one_of(st.none(), FINITE))
        elif ann == list[float]:
            data[fname] = draw(st.lists(FINITE, max_size=5))
        elif ann is int:
            data[fname] = draw(st.integers(0, 10**6))
        elif typing.get_origin(ann) is typing.Literal:
            data[fname] = draw(st.sampled_from(typing.get_args(ann)))
        else:  # pragma: no cover - a new field type needs a strategy here
            raise AssertionError(f"{cls.__name__}.{fname}: no strategy for {ann}")
    # Rules between fields (see each class's validators).
    if cls.thin:
        data["l"] = 0.0
    kind = cls.__name__
    if kind in ("SBend", "RBend"):
        data["l"] = draw(POSITIVE)
    if kind == "RBend":
        data["angle"] = draw(st.floats(min_value=-3.14, max_value=3.14))
    if kind == "HKicker":
        data["yangle"] = 0.0
    if kind == "VKicker":
        data["xangle"] = 0.0
    if kind == "NonlinearInsertField":
        data["n_steps"] = draw(st.integers(1, 10**5))
    if kind == "FieldMap":
        z = sorted(draw(st.sets(FINITE, max_size=6)))
        data["z"], data["bz"] = z, draw(st.lists(FINITE, min_size=len(z), max_size=len(z)))
    return cls.model_validate(data)


def _same(a, b) -> bool:
    """Exact equality, telling -0.0 from 0.0 (floats compared bit for bit)."""
    if isinstance(a, float) and isinstance(b, float):
        return a.hex() == b.hex()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------ lossless JSON
@pytest.mark.parametrize("cls", ELEMENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_element_json_round_trip_is_exact(cls, data):
    el = data.draw(elements(cls))
    back = type(el).model_validate_json(el.model_dump_json())
    assert _same(back.model_dump(), el.model_dump())
    via_dict = element_from_dict(el.model_dump(mode="json"))
    assert type(via_dict) is cls and _same(via_dict.model_dump(), el.model_dump())


@st.composite
def lattices(draw):
    """Random lattices: definitions of any types, placements, overrides, knobs, expressions."""
    kinds = draw(st.lists(st.sampled_from(ELEMENT_TYPES), min_size=1, max_size=6))
    names = draw(st.lists(NAMES, min_size=len(kinds), max_size=len(kinds), unique=True))
    defs = {n: draw(elements(k)).with_updates(name=n) for n, k in zip(names, kinds)}
    line = draw(st.lists(st.sampled_from(names), min_size=1, max_size=12))
    overrides = {}
    for i in draw(st.sets(st.integers(0, len(line) - 1), max_size=4)):
        fields = draw(st.dictionaries(st.sampled_from(sorted(COMMON)), FINITE, min_size=1, max_size=2))
        if draw(st.booleans()):
            fields["diff_params"] = draw(st.lists(
                st.sampled_from(defs[line[i]].numeric_fields()), unique=True, max_size=2))
        overrides[i] = fields
    knob_names = draw(st.lists(KNOB_NAMES, max_size=3, unique=True))
    knobs = {k: Knob(value=draw(BOUNDED), diff=draw(st.booleans()), description=draw(TEXT))
             for k in knob_names}
    expressions = {}
    if knob_names:
        for n in draw(st.sets(st.sampled_from(names), max_size=3)):
            field = draw(st.sampled_from(sorted(COMMON)))
            k = draw(st.sampled_from(knob_names))
            expressions[n] = {field: f"{draw(BOUNDED)!r} * {k} + {draw(BOUNDED)!r}"}
    return Lattice(name=draw(TEXT), definitions=defs, line=line, overrides=overrides,
                   knobs=knobs, expressions=expressions, s0=draw(BOUNDED), extra=draw(EXTRA))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lat=lattices())
def test_lattice_json_round_trip_is_exact(lat):
    back = Lattice.from_json(lat.to_json())
    assert back == lat
    assert _same(back.model_dump(), lat.model_dump())
    assert [p.s_start for p in back.elements] == [p.s_start for p in lat.elements]
    assert back.flagged() == lat.flagged()


def test_knob_tie_survives_json():
    q = Quadrupole(name="qf", l=0.5)
    lat = Lattice.from_elements([q, Drift(name="d", l=1.0), q], knobs={"kqf": 0.3},
                                expressions={"qf": {"k1": "2 * kqf"}})
    back = Lattice.from_json(lat.to_json())
    back.set_knob("kqf", 0.5)
    assert back["qf"].k1 == 1.0 and back["qf:2"].k1 == 1.0


# ------------------------------------------------------------------ errors name element and field
def _message(err) -> str:
    return str(err.value)


@pytest.mark.parametrize("cls, fields, field", [
    (Quadrupole, {"l": -1.0}, "l"),
    (Drift, {"l": math.nan}, "l"),
    (Drift, {"l": math.inf}, "l"),
    (Quadrupole, {"l": 0.5, "k1": math.inf}, "k1"),
    (Quadrupole, {"l": 0.5, "k1s": -math.inf}, "k1s"),
    (SBend, {"l": 1.0, "angle": math.nan}, "angle"),
    (Multipole, {"knl": [0.0, math.inf]}, "knl"),
    (SBend, {"l": 1.0, "gap": -0.01}, "gap"),
])
def test_bad_values_name_element_and_field(cls, fields, field):
    with pytest.raises(ValueError) as err:
        cls(name="mag1", **fields)
    assert f"'mag1'" in _message(err) and f"field '{field}" in _message(err)


def test_unknown_element_type_from_dict():
    with pytest.raises(ValueError, match=r"element 'x1': unknown element type 'Crab'"):
        element_from_dict({"element_name": "Crab", "name": "x1"})


def _json_with(replace: str, by: str) -> str:
    lat = Lattice.from_elements([Quadrupole(name="qf", l=1.0, k1=0.1)])
    text = lat.to_json()
    assert replace in text
    return text.replace(replace, by)


@pytest.mark.parametrize("replace, by, named", [
    ('"Quadrupole"', '"Crab"', ["definitions.qf", "Crab"]),          # unknown type
    ('"l":1.0', '"l":-1.0', ["Quadrupole 'qf'", "field 'l'"]),      # negative length
    ('"l":1.0', '"l":NaN', ["Quadrupole 'qf'", "field 'l'"]),       # NaN length
    ('"k1":0.1', '"k1":Infinity', ["Quadrupole 'qf'", "field 'k1'"]),  # infinite strength
    ('"k1":0.1', '"k1":"strong"', ["Quadrupole 'qf'", "field 'k1'"]),  # not a number
])
def test_bad_json_names_element_and_field(replace, by, named):
    with pytest.raises(ValidationError) as err:
        Lattice.from_json(_json_with(replace, by))
    for text in named:
        assert text in _message(err)


@pytest.mark.parametrize("text", ['{"name": "x", "definitions": {', "[1, 2]", "", "not json"])
def test_malformed_json_refused(text):
    with pytest.raises(ValidationError, match="Invalid JSON|object"):
        Lattice.from_json(text)


def test_lattice_structure_errors():
    q = Quadrupole(name="qf", l=1.0)
    with pytest.raises(ValidationError, match="placement 1 names unknown element 'qx'"):
        Lattice(definitions={"qf": q}, line=["qf", "qx"])
    with pytest.raises(ValidationError, match="override for placement 3 out of range"):
        Lattice(definitions={"qf": q}, line=["qf"], overrides={3: {"k1": 1.0}})
    with pytest.raises(ValidationError, match=r"Quadrupole 'qf', field 'k1'.*unknown knobs \['kq9'\]"):
        Lattice(definitions={"qf": q}, line=["qf"], expressions={"qf": {"k1": "kq9"}})
    with pytest.raises(ValidationError, match=r"(?s)placement 0 \('qf'\).*field 'l'"):
        Lattice(definitions={"qf": q}, line=["qf"], overrides={0: {"l": -2.0}})
    with pytest.raises(LatticeError, match="two different definitions named 'qf'"):
        Lattice.from_elements([q, Quadrupole(name="qf", l=2.0)])


def test_placement_and_knob_errors():
    q = Quadrupole(name="qf", l=1.0)
    lat = Lattice.from_elements([q, q], knobs={"kqf": 0.1}, expressions={"qf": {"k1": "kqf"}})
    with pytest.raises(ValueError, match=r"Quadrupole 'qf'.*field 'l'"):
        lat["qf:2"].l = -1.0
    with pytest.raises(ValueError, match=r"Quadrupole 'qf'.*field 'k1'"):
        lat["qf:1"].k1 = math.nan
    with pytest.raises(KeyError, match="kqd"):
        lat.set_knob("kqd", 1.0)
    with pytest.raises(ValidationError, match="value"):
        lat.knobs["kqf"].value = math.inf
    with pytest.raises(KeyError, match="placed 2 times"):
        lat["qf:3"]
    assert isinstance(q, Element)
