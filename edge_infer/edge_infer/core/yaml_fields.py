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
Reading a YAML document field by field, each error naming the field.

The layouts of sharded networks (:mod:`edge_infer.sharding.layout`) and the fleet
descriptions (:mod:`edge_infer.bringup.fleet`) are read with these: ``where`` names the
field (``shards[1].cut``), and the file is named once, by the caller, around them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ['FieldError', 'field_choice', 'field_list', 'field_mapping', 'field_number',
           'field_text', 'read_yaml']


class FieldError(ValueError):
    """A YAML document or one of its fields is malformed; the message names it."""


def read_yaml(path: Path, what: str) -> Any:
    """
    Return the YAML document in ``path``.

    :param what: names the document in the messages, e.g. ``'layout'``
    :raises FieldError: the file cannot be read or is not YAML
    """
    try:
        return yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as error:
        raise FieldError(f'{what} {path}: cannot read it: {error.strerror or error}') \
            from error
    except yaml.YAMLError as error:
        raise FieldError(f'{what} {path}: not valid YAML: {error}') from error


def field_mapping(value: Any, where: str, keys: tuple[str, ...] | None) -> dict:
    """Return ``value``, a mapping with only ``keys`` (any with None)."""
    if not isinstance(value, dict):
        raise FieldError(f'{where}: expected a mapping, got {type(value).__name__}')
    if keys is not None:
        unknown = sorted(str(key) for key in value if key not in keys)
        if unknown:
            raise FieldError(f'{where}: unknown key {unknown[0]!r} (known: '
                             f'{", ".join(keys)})')
    return value


def field_list(value: Any, where: str) -> list:
    """Return ``value``, a list."""
    if not isinstance(value, list):
        raise FieldError(f'{where}: expected a list, got {type(value).__name__}')
    return value


def field_text(value: Any, where: str) -> str:
    """Return ``value``, a non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(f'{where}: expected a non-empty string, got {value!r}')
    return value.strip()


def field_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    """Return ``value``, one of ``choices``."""
    if value not in choices:
        raise FieldError(f'{where}: {value!r} is not one of '
                         + ', '.join(repr(c) for c in choices))
    return value


def field_number(value: Any, where: str, *, positive: bool) -> float:
    """Return ``value``, a number > 0 (``positive``) or >= 0, as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f'{where}: expected a number, got {value!r}')
    if (value <= 0) if positive else (value < 0):
        raise FieldError(f'{where}: {value!r} must be {"> 0" if positive else ">= 0"}')
    return float(value)
