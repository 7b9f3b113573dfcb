"""
Reading the numbers a caller passes: every real number type, exactly (pure).

A Jupyter, pandas or Excel user hands over Python ints and floats, ``Decimal``, ``Fraction``,
numeric text, and numpy scalars (``np.float64`` is a float; ``np.int64``, ``np.float32`` and
the rest are only ``numbers.Real``). Each becomes an exact ``Decimal``:

=============================  ===========================================================
``bool``, ``np.bool_``         not a number (a flag where a number is meant is a mistake)
``int``, ``numbers.Integral``  its value (``np.int64(5)`` -> ``5``)
``float`` (``np.float64``)     its shortest repr: ``0.1`` -> ``0.1``, ``1e-05`` -> ``0.00001``
other ``numbers.Real``         the shortest text that reads back as the same value of its own
(``np.float32``, ...)          type, as numpy prints it: ``np.float32(0.1)`` -> ``0.1`` (not
                               ``0.100000001490116...``, the float64 it widens to)
``Decimal``                    itself
``Fraction``                   its exact decimal (``3/8`` -> ``0.375``); ``1/3`` has none
numeric ``str``                the number it spells (``" 1e-5 "`` -> ``0.00001``)
=============================  ===========================================================

Nothing here imports numpy: numpy's scalars are recognised by the ``numbers`` ABCs it
registers them with.
"""

from __future__ import annotations

import numbers
import operator
import re
from decimal import Decimal
from fractions import Fraction
from typing import Optional

__all__: list[str] = []

_NUMBER_TEXT_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class NotANumber(ValueError):
    """``value`` cannot be read as an exact number; ``str(exc)`` says why (after "got ...")."""


def is_bool(value: object) -> bool:
    """A Python or numpy boolean (numpy's is no ``bool`` subclass)."""
    return isinstance(value, bool) or (
        type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    )


def bool_of(value: object) -> Optional[bool]:
    """``value`` as a bool when it is a Python or numpy boolean, else None."""
    return bool(value) if is_bool(value) else None


def decimal_of(value: object) -> Decimal:
    """
    ``value`` as an exact Decimal (NaN and infinities included: the caller judges them).

    Raises:
        NotANumber: a bool, no number at all, or a fraction with no finite decimal form.
    """
    if is_bool(value):
        raise NotANumber("a bool is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(float.__repr__(value))  # np.float64's own repr is "np.float64(...)"
    if isinstance(value, numbers.Integral):
        return Decimal(operator.index(value))
    if isinstance(value, numbers.Rational):
        return _fraction_decimal(Fraction(int(value.numerator), int(value.denominator)))
    if isinstance(value, numbers.Real):
        return _real_decimal(value)
    if isinstance(value, str) and _NUMBER_TEXT_RE.fullmatch(value.strip()):
        return Decimal(value.strip())
    raise NotANumber("not a number")


def integer_of(value: object) -> Optional[int]:
    """
    ``value`` as an int when it is a whole number (``5``, ``np.int64(5)``, ``5.0``, ``"5"``).

    Returns None for a bool, a fraction, text that is not digits, or no number at all. Whole
    floats are taken because Excel hands every number over as a float.
    """
    if is_bool(value):
        return None
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.isdigit() else None
    if not isinstance(value, (numbers.Real, Decimal)):
        return None
    try:
        number = decimal_of(value)
    except NotANumber:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def _fraction_decimal(value: Fraction) -> Decimal:
    """The exact decimal of a fraction whose denominator divides a power of ten."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        raise NotANumber("it has no exact decimal form (round it first)")
    places = max(twos, fives)
    scaled = value * 10**places
    return Decimal(f"{scaled.numerator}E-{places}")


def _real_decimal(value: numbers.Real) -> Decimal:
    """A real of another type (np.float32, ...): its shortest text of its own precision."""
    text = str(value).strip()
    if _NUMBER_TEXT_RE.fullmatch(text):
        try:
            if type(value)(text) == value:  # type: ignore[call-arg]
                # numpy versions print "123456790.0" or "1.2345679e+08": one text for both
                return _without_trailing_zeros(Decimal(text))
        except (TypeError, ValueError, ArithmeticError):
            pass
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return Decimal(text)
    ratio = getattr(value, "as_integer_ratio", None)
    if ratio is not None:
        numerator, denominator = ratio()
        return _fraction_decimal(Fraction(numerator, denominator))
    return Decimal(repr(float(value)))


def _without_trailing_zeros(value: Decimal) -> Decimal:
    """``value`` without zeros after its last nonzero decimal digit (exactly, no context)."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        return value
    coefficient = list(digits)
    while exponent < 0 and len(coefficient) > 1 and coefficient[-1] == 0:
        coefficient.pop()
        exponent += 1
    return Decimal((sign, tuple(coefficient), exponent))
