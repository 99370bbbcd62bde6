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

"""Tests for the shard relay wire codecs: round trips, sizes and malformed input."""

import dataclasses
import itertools

from edge_infer.sharding.wire import (
    CodecError, COMPRESSIONS, decode, encode, EncodedTensor, WIRE_CODECS)
import numpy as np
import pytest


def feature_map(seed: int = 0) -> np.ndarray:
    """Return a ReLU-like activation: a quarter zeros, the rest spread over [0, 6]."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 1.0, size=(1, 16, 24, 24)).astype(np.float32)
    values[rng.random(values.shape) < 0.25] = 0.0
    return values


@pytest.mark.parametrize('compression', COMPRESSIONS)
def test_raw_round_trip_is_bit_exact_for_every_dtype(compression):
    rng = np.random.default_rng(1)
    for dtype in ('uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32',
                  'float64'):
        array = (rng.standard_normal((2, 3, 5)) * 50).astype(dtype)
        encoded = encode(array, codec='raw', compression=compression)
        assert encoded.dtype == dtype and encoded.shape == (2, 3, 5)
        assert not encoded.quantized and encoded.compression == compression
        decoded = decode(encoded, dtype=dtype)
        assert decoded.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize('codec,compression', list(itertools.product(WIRE_CODECS, COMPRESSIONS)))
def test_round_trip_error_is_within_the_codec_precision(codec, compression):
    array = feature_map()
    encoded = encode(array, codec=codec, compression=compression)
    decoded = decode(encoded)
    assert decoded.dtype == np.float32 and decoded.shape == array.shape
    error = np.abs(decoded - array).max()
    if codec == 'raw':
        assert error == 0
    elif codec == 'fp16':
        assert encoded.dtype == 'float16'
        # float16 keeps 11 significant bits.
        assert error <= array.max() * 2.0 ** -11
        assert error > 0
    else:
        assert encoded.dtype == 'int8' and encoded.quantized
        # Rounding to the nearest step is off by at most half a step.
        assert error <= encoded.scale / 2 * (1 + 1e-5)
        assert encoded.scale == pytest.approx(array.max() / 255, rel=1e-6)


def test_int8_keeps_zero_exact_and_covers_negative_ranges():
    rng = np.random.default_rng(2)
    array = rng.uniform(-3.0, 1.0, size=(4, 100)).astype(np.float32)
    array[:, :10] = 0.0
    encoded = encode(array, codec='int8')
    decoded = decode(encoded)
    assert (decoded[:, :10] == 0).all()
    assert decoded.min() == pytest.approx(array.min(), abs=encoded.scale / 2)
    assert decoded.max() == pytest.approx(array.max(), abs=encoded.scale / 2)
    assert -128 <= encoded.zero_point <= 127


def test_int8_of_a_constant_zero_tensor_decodes_to_zeros():
    encoded = encode(np.zeros((3, 4), np.float32), codec='int8')
    np.testing.assert_array_equal(decode(encoded), np.zeros((3, 4), np.float32))


def test_payload_sizes_follow_the_codec():
    array = feature_map()
    sizes = {codec: len(encode(array, codec=codec).data) for codec in WIRE_CODECS}
    assert sizes == {'raw': array.nbytes, 'fp16': array.nbytes // 2, 'int8': array.size}
    # Dead channels (all zero after a ReLU) are what lossless compression exploits.
    array[:, :8] = 0.0
    for codec, compression in itertools.product(WIRE_CODECS, ('lz4', 'zstd')):
        packed = encode(array, codec=codec, compression=compression)
        assert len(packed.data) < sizes[codec] * 0.75


def test_decode_casts_to_the_consumer_dtype():
    array = feature_map()
    encoded = encode(array, codec='fp16')
    assert decode(encoded, dtype='float16').dtype == np.float16
    assert decode(encoded, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize('codec', ['fp16', 'int8'])
def test_lossy_codecs_refuse_integer_tensors(codec):
    with pytest.raises(CodecError, match='floating'):
        encode(np.arange(6, dtype=np.int32), codec=codec)


def test_int8_refuses_non_finite_values():
    array = feature_map()
    array[0, 0, 0, 0] = np.inf
    with pytest.raises(CodecError, match='NaN or infinite'):
        encode(array, codec='int8')


def test_unknown_codec_compression_and_dtype_are_named():
    array = feature_map()
    with pytest.raises(CodecError, match="'bf16'"):
        encode(array, codec='bf16')
    with pytest.raises(CodecError, match="'gzip'"):
        encode(array, codec='raw', compression='gzip')
    encoded = encode(array, codec='raw')
    with pytest.raises(CodecError, match="'gzip'"):
        decode(dataclasses.replace(encoded, compression='gzip'))
    with pytest.raises(CodecError, match="'bfloat16'"):
        decode(dataclasses.replace(encoded, dtype='bfloat16'))
    with pytest.raises(CodecError, match='output dtype'):
        decode(encoded, dtype='no-such-type')
    with pytest.raises(CodecError, match='cannot travel'):
        encode(np.array(['a', 'b']), codec='raw')


@pytest.mark.parametrize('compression', COMPRESSIONS)
def test_payload_size_must_match_the_shape(compression):
    encoded = encode(feature_map(), codec='fp16', compression=compression)
    wrong_shape = dataclasses.replace(encoded, shape=(1, 16, 24, 23))
    with pytest.raises(CodecError, match='bytes'):
        decode(wrong_shape)


def test_truncated_or_corrupt_compressed_data_is_rejected():
    array = feature_map()
    for compression in ('lz4', 'zstd'):
        encoded = encode(array, codec='raw', compression=compression)
        for data in (encoded.data[:len(encoded.data) // 2], encoded.data[:8],
                     b'not compressed at all'):
            with pytest.raises(CodecError, match=f'{compression}|bytes'):
                decode(dataclasses.replace(encoded, data=data))
    raw = encode(array, codec='raw')
    with pytest.raises(CodecError, match='bytes'):
        decode(dataclasses.replace(raw, data=raw.data[:-4]))


def test_invalid_quantization_parameters_are_rejected():
    encoded = encode(feature_map(), codec='int8')
    for scale in (0.0, -1.0, float('nan')):
        with pytest.raises(CodecError, match='scale'):
            decode(dataclasses.replace(encoded, scale=scale))
    with pytest.raises(CodecError, match='quantized tensor has dtype'):
        decode(dataclasses.replace(encode(feature_map(), codec='fp16'), quantized=True,
                                   scale=1.0))


def test_encoded_tensor_fields_are_plain_message_values():
    encoded = encode(feature_map(), codec='int8', compression='lz4')
    assert isinstance(encoded, EncodedTensor)
    assert all(isinstance(d, int) for d in encoded.shape)
    assert isinstance(encoded.scale, float) and isinstance(encoded.zero_point, int)
    assert isinstance(encoded.data, bytes)
    # A relay copies data into a uint8[] field; decode takes any buffer back.
    np.testing.assert_array_equal(
        decode(dataclasses.replace(encoded, data=bytearray(encoded.data))),
        decode(encoded))
