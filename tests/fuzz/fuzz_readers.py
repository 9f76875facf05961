"""Coverage-guided fuzzing of the DICOM readers with atheris (RELIABILITY T2).

Run:  python tests/fuzz/fuzz_readers.py CORPUS_DIR [SEED_DIR ...] -max_total_time=60
Any exception that is not a monai_diffrecon.errors.DiffReconError is a crash (atheris stops and reports it).
"""

import sys
import warnings

import atheris

with atheris.instrument_imports():
    from monai_diffrecon.errors import DiffReconError
    from monai_diffrecon.io.dicom import read_nm_projections
    from monai_diffrecon.io.dicom_guard import pixel_values, read_dataset

warnings.simplefilter("ignore")


def test_one_input(data: bytes) -> None:
    try:
        ds = read_dataset(data)
        pixel_values(ds, "<bytes>", max_bytes=64 * 1024 * 1024)
    except DiffReconError:
        pass
    try:
        read_nm_projections(data)
    except DiffReconError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
