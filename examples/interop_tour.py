"""One lattice through the formats other codes read: PALS, Bmad, elegant, TFS, and its survey.

Run: python examples/interop_tour.py [OUT_DIR]  (writes its files and a footprint plot there)
"""

import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import jacc  # noqa: E402
from jacc.lattice import PhysicsWarning  # noqa: E402
from jacc.lattice.io_pals import read_pals, write_pals  # noqa: E402
from jacc.lattice.io_tfs import read_tfs, survey_to_tfs, write_tfs  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lat, rp = jacc.lattices.iota()

    # PALS: IOTA's dipole edges and knobs have no PALS form; they travel in the extension
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PhysicsWarning)
        write_pals(lat, out / "iota.pals.yaml")
    print("PALS:", caught[0].message if caught else "no extension needed")
    assert read_pals(out / "iota.pals.yaml") == lat

    # Survey as MAD-X SURVEY, written as TFS, and the footprint
    sv = lat.survey()
    write_tfs(survey_to_tfs(sv), out / "iota_survey.tfs")
    print(f"survey: {len(sv)} rows, closes at x = {sv.x[-1]:.2e} m, z = {sv.z[-1]:.2e} m, "
          f"theta = {sv.theta[-1]:.6f} rad; TFS columns {list(read_tfs(out / 'iota_survey.tfs').columns)}")
    sv.plot().figure.savefig(out / "iota_footprint.png", dpi=120)

    # Bmad and elegant: the FODO ring written and read back
    fodo, _ = jacc.lattices.fodo_ring()
    fodo = fodo.remove("rf")  # elegant's RFCA needs a frequency; the ring's cavity gives harmon
    (out / "fodo.bmad").write_text(fodo.to_bmad())
    (out / "fodo.lte").write_text(fodo.to_elegant())
    for reader, path in ((jacc.Lattice.from_bmad, out / "fodo.bmad"),
                         (jacc.Lattice.from_elegant, out / "fodo.lte")):
        back = reader(path)
        print(f"{path.name}: {back}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "interop_out"))
