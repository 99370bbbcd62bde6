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
What the model converters share: their error, and their command line.

Each converter (``tflite_to_onnx``, ``tfjs_to_onnx``) turns one file into an ONNX
model and runs as ``python -m <module> SOURCE TARGET``: that is how model provisioning
starts it in a child process (``bundled``), reading the last line of its error output.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Sequence

__all__ = ['ConversionError', 'converter_main']


class ConversionError(RuntimeError):
    """A file is not a model of the expected format, or holds what ONNX cannot express."""


def converter_main(convert: Callable[[Path, Path], Path], *, description: str,
                   source_help: str, argv: Sequence[str] | None = None) -> None:
    """Parse ``SOURCE TARGET``, convert, and exit with one line naming a conversion error."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('source', type=Path, help=source_help)
    parser.add_argument('target', type=Path, help='the .onnx file to write')
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.target)
    except ConversionError as exc:
        # The last line of the error output is what the caller reports.
        raise SystemExit(f'{type(exc).__name__}: {exc}') from None
