# Copyright 2026 The edge_infer Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Node parameters as plain data: declared once, validated before a node starts.

Each node lists its parameters as :class:`ParameterSpec` values. The rclpy layer turns
them into declared parameters with descriptors; :func:`validate_parameter` checks a
value and raises :class:`ParameterError` naming the parameter and what it accepts, so a
node with a bad launch file fails at start-up with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

ParameterValue = Union[bool, int, float, str, list]


class ParameterError(ValueError):
    """A node parameter has a value outside what it accepts."""


@dataclass(frozen=True, kw_only=True)
class ParameterSpec:
    """One node parameter: its default, meaning and accepted values."""

    name: str
    default: ParameterValue
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def allowed(self) -> str:
        """Describe the accepted values for error messages and descriptors."""
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f'a number in [{self.minimum}, {self.maximum}]'
        if self.minimum is not None:
            return f'a number >= {self.minimum}'
        if self.maximum is not None:
            return f'a number <= {self.maximum}'
        return f'a {type(self.default).__name__}'


def validate_parameter(
        spec: ParameterSpec, value: ParameterValue | None) -> ParameterValue:
    """
    Check ``value`` against ``spec`` and return it, converted where that is lossless.

    An integer is accepted where a float is expected, since YAML writes ``30`` for
    ``30.0``. List parameters are lists of strings.
    """
    expected = type(spec.default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is list:
        # rclpy reads an empty array from a params file or ``-p name:=[]`` as None.
        # A plain string would otherwise become a list of its characters.
        if isinstance(value, (str, bytes)):
            raise ParameterError(
                f"parameter '{spec.name}': {value!r} is a string, expected a list of "
                "strings such as ['a', 'b']")
        if value is None:
            value = []
        elif isinstance(value, (bool, int, float)):
            raise ParameterError(
                f"parameter '{spec.name}': {value!r} is a {type(value).__name__}, "
                'expected a list of strings')
        else:
            value = list(value)
        if not all(isinstance(item, str) for item in value):
            raise ParameterError(
                f"parameter '{spec.name}': {value!r} is not a list of strings")
        return value
    if type(value) is not expected:
        raise ParameterError(
            f"parameter '{spec.name}': {value!r} is a {type(value).__name__}, "
            f'expected {spec.allowed()}')
    if spec.choices and value not in spec.choices:
        raise ParameterError(
            f"parameter '{spec.name}': {value!r} is not {spec.allowed()}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_low = spec.minimum is not None and value < spec.minimum
        too_high = spec.maximum is not None and value > spec.maximum
        if too_low or too_high:
            raise ParameterError(
                f"parameter '{spec.name}': {value!r} is not {spec.allowed()}")
    return value


def validate_all(
        specs: Sequence[ParameterSpec],
        values: dict[str, ParameterValue | None]) -> dict[str, ParameterValue]:
    """Validate every value of ``specs``; the first bad one raises."""
    return {spec.name: validate_parameter(spec, values[spec.name]) for spec in specs}
