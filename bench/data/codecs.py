"""Label codecs: how a dataset stores its labels, as a lookup table from raw values to class ids.

Every file-backed dataset decodes its label files to raw values (``0..255``) and maps them with a
:class:`LabelCodec`: a 256-entry table to class ids (or the ignore index), and a 256-entry mask of
the raw values that may occur at all. A raw value outside that mask is reported, never silently
mapped (a wrong label file would otherwise train and score as if it were right).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LabelCodec:
    """Maps raw label values (as stored in the files) to class ids.

    Attributes:
        lut: ``(256,)`` uint8: class id (or the ignore index) of each raw value.
        valid: ``(256,)`` bool: raw values that may occur (a class or ignored).
        description: The raw encoding in words, for error messages.
    """

    lut: np.ndarray
    valid: np.ndarray
    description: str

    @classmethod
    def build(
        cls,
        mapping: Mapping[int, int],
        *,
        ignore_raw: Iterable[int] = (),
        ignore_index: int = 255,
        description: str,
    ) -> LabelCodec:
        """Raw value ``v`` -> ``mapping[v]``; ``ignore_raw`` and ``ignore_index`` -> ignored.

        (A raw value equal to ``ignore_index`` is ignored unless ``mapping`` maps it.)
        Every other raw value is invalid and reported when it occurs.

        Args:
            mapping: Raw value -> class id.
            ignore_raw: Raw values that mean "ignored" (e.g. CamVid's void, 11).
            ignore_index: The class id of ignored pixels.
            description: The raw encoding in words, for error messages.

        Returns:
            The codec.
        """
        lut = np.full(256, ignore_index, dtype=np.uint8)
        valid = np.zeros(256, dtype=bool)
        for raw, cls_id in mapping.items():
            lut[raw] = cls_id
            valid[raw] = True
        # The raw value equal to the ignore index means "ignored" unless it encodes a class
        # (ISBI stores its "cell" class as 255).
        for raw in (*ignore_raw, *(() if ignore_index in mapping else (ignore_index,))):
            lut[raw] = ignore_index
            valid[raw] = True
        lut.setflags(write=False)
        valid.setflags(write=False)
        return cls(lut=lut, valid=valid, description=description)

    @classmethod
    def identity(
        cls,
        num_classes: int,
        *,
        ignore_raw: Iterable[int] = (),
        ignore_index: int = 255,
        description: str,
    ) -> LabelCodec:
        """Raw ``0..num_classes-1`` are the class ids.

        Args:
            num_classes: Number of classes.
            ignore_raw: Raw values that mean "ignored".
            ignore_index: The class id of ignored pixels.
            description: The raw encoding in words, for error messages.

        Returns:
            The codec.
        """
        return cls.build(
            {i: i for i in range(num_classes)},
            ignore_raw=ignore_raw,
            ignore_index=ignore_index,
            description=description,
        )

    @classmethod
    def shifted(cls, num_classes: int, *, ignore_index: int = 255, description: str) -> LabelCodec:
        """Raw 0 is ignored and raw ``1..num_classes`` are class ids ``0..num_classes-1``.

        Args:
            num_classes: Number of classes.
            ignore_index: The class id of ignored pixels (raw 0 and raw ``ignore_index``).
            description: The raw encoding in words, for error messages.

        Returns:
            The codec.
        """
        return cls.build(
            {i + 1: i for i in range(num_classes)},
            ignore_raw=(0,),
            ignore_index=ignore_index,
            description=description,
        )
