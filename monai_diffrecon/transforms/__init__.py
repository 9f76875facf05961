"""MONAI transforms: array classes (logic) in ``array.py`` and ``...d`` dictionary wrappers in ``dictionary.py``."""

from monai_diffrecon.transforms.array import (
    ChannelsToComplex,
    ComplexToChannels,
    LoadKSpace,
    LoadSPECTStudy,
    SelectViews,
    SimulateMeasurement,
    Stack25D,
    ThinCounts,
    UndersampleKSpace,
)
from monai_diffrecon.transforms.dictionary import (
    ChannelsToComplexd,
    ComplexToChannelsd,
    LoadKSpaced,
    LoadSPECTStudyd,
    SelectViewsd,
    SimulateMeasurementd,
    Stack25Dd,
    ThinCountsd,
    UndersampleKSpaced,
)

__all__ = [
    "SimulateMeasurement",
    "ThinCounts",
    "SelectViews",
    "UndersampleKSpace",
    "Stack25D",
    "ComplexToChannels",
    "ChannelsToComplex",
    "LoadSPECTStudy",
    "LoadKSpace",
    "SimulateMeasurementd",
    "ThinCountsd",
    "SelectViewsd",
    "UndersampleKSpaced",
    "Stack25Dd",
    "ComplexToChannelsd",
    "ChannelsToComplexd",
    "LoadSPECTStudyd",
    "LoadKSpaced",
]
