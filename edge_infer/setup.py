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

from glob import glob

from setuptools import find_packages, setup

package_name = 'edge_infer'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['py.typed', 'models/*.yaml']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='edge_infer maintainers',
    maintainer_email='maintainers@edge-infer.dev',
    description='Low-latency camera object detection nodes for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'camera = edge_infer.nodes.camera:main',
            'preprocess = edge_infer.nodes.preprocess:main',
            'detector = edge_infer.nodes.detector:main',
            'batch_detector = edge_infer.nodes.batch_detector:main',
            'composed = edge_infer.nodes.composed:main',
            'follow_person = edge_infer.nodes.follow_person:main',
            'monitor = edge_infer.nodes.monitor:main',
            'input_monitor = edge_infer.nodes.input_monitor:main',
            'replay = edge_infer.nodes.replay:main',
            'recorder = edge_infer.nodes.recorder:main',
            'privacy_filter = edge_infer.nodes.privacy_filter:main',
            'shard_relay = edge_infer.nodes.shard_relay:main',
            'supervisor = edge_infer.nodes.supervisor:main',
            'model_store = edge_infer.nodes.model_store:main',
            'edge_infer = edge_infer.tools.cli:main',
        ],
        # Inference backends; other packages add theirs to the same group.
        'edge_infer.backends': [
            'onnxruntime = edge_infer.backends.onnx_runtime:OnnxRuntimeBackend',
            'litert = edge_infer.backends.litert:LiteRtBackend',
            'tensorrt = edge_infer.backends.tensorrt:TensorRtBackend',
            'edgetpu = edge_infer.backends.edgetpu:EdgeTpuBackend',
        ],
    },
)
