"""The slots the prompt-understanding model predicts, and their mapping to and from a ``Reading``.

Each slot is a choice among named classes (``SLOTS``; None is "not said"). A slot that does not
apply to a reading's kind (the second thing of a single object, the count of a pair) has no
target (``IGNORE``) and is not read when decoding. Pure Python: no torch.
"""
from __future__ import annotations

from .dataset import COLOURS, SHAPES
from .reading import KINDS, Mention, Reading
from .scene import RELATIONS

IGNORE = -100  # torch's cross-entropy ignore_index
_COLOURS = (None,) + tuple(COLOURS)
_SHAPES = (None,) + SHAPES

#: slot name -> its classes, in the order of the model's outputs
SLOTS: dict[str, tuple] = {
    "kind": KINDS,
    "first_shape": _SHAPES,
    "first_colour": _COLOURS,
    "second_shape": SHAPES,
    "second_colour": _COLOURS,
    "relation": RELATIONS,
    "count": (2, 3),
    "background": _COLOURS,
    "not_background": _COLOURS,
    "not_shape": _SHAPES,
}
#: the slots each kind reads (the rest are ignored)
APPLIES = {
    "single": ("kind", "first_shape", "first_colour", "background", "not_background", "not_shape"),
    "pair": ("kind", "first_shape", "first_colour", "second_shape", "second_colour", "background", "not_background",
             "not_shape"),
    "count": ("kind", "first_shape", "first_colour", "count", "background", "not_background", "not_shape"),
}
APPLIES["position"] = APPLIES["pair"] + ("relation",)


def slot_values(reading: Reading) -> dict[str, object]:
    """The value of every slot that applies to ``reading`` (class names, not indices)."""
    second = reading.second or Mention(None, None)
    values = {"kind": reading.kind, "first_shape": reading.first.shape, "first_colour": reading.first.colour,
              "second_shape": second.shape, "second_colour": second.colour, "relation": reading.relation,
              "count": reading.count, "background": reading.background,
              "not_background": reading.not_background, "not_shape": reading.not_shape}
    return {slot: values[slot] for slot in APPLIES[reading.kind]}


def targets(reading: Reading) -> dict[str, int]:
    """Class index per slot (``IGNORE`` where the slot does not apply)."""
    values = slot_values(reading)
    return {slot: SLOTS[slot].index(values[slot]) if slot in values else IGNORE for slot in SLOTS}


def decode(choices: dict[str, int]) -> Reading:
    """The Reading of one prompt's chosen class index per slot (only the slots its kind reads)."""
    value = {slot: SLOTS[slot][index] for slot, index in choices.items()}
    kind = value["kind"]
    second = Mention(value["second_shape"], value["second_colour"]) if kind in ("pair", "position") else None
    return Reading(Mention(value["first_shape"], value["first_colour"]), second,
                   value["relation"] if kind == "position" else None, value["count"] if kind == "count" else 1,
                   value["background"], value["not_background"], value["not_shape"])
