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
The soak: memory slopes and frame counts, on synthetic series and through the real nodes.

The short soak asserts that every figure is there and adds up, never how fast the
machine was or whether a few seconds of memory already show a flat trend.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
import random

from edge_infer.benchmarks.process_stats import Reading
from edge_infer.benchmarks.soak import (
    CHAIN, check_counters, DetectionTally, GOAL_MB_PER_MIN, memory_trend, MIN_TREND_SAMPLES,
    rss_slope, run_soak, SoakReport, SoakSettings)
from edge_infer.core.cards import DEFAULT_MODEL
from edge_infer.tools.cli import build_parser
import pytest

START_S = 1000.0


def series(rss: list[float], *, period_s: float = 10.0, cpu_per_s: float = 0.5,
           start_s: float = START_S) -> list[Reading]:
    """Make readings ``period_s`` apart from ``start_s`` with the given memory."""
    return [Reading(time_s=start_s + i * period_s, cpu_s=i * period_s * cpu_per_s,
                    rss_mb=value) for i, value in enumerate(rss)]


def warming_then(after: list[float], warm_up_samples: int = 12) -> list[float]:
    """Steep growth for the warm-up (the model loading, pools filling), then ``after``."""
    return [100.0 + 10.0 * i for i in range(warm_up_samples)] + after


def test_slope_is_in_mb_per_minute() -> None:
    # 0.5 MB/min sampled every 10 s, with times from any origin.
    times = [30.0 + 10.0 * i for i in range(20)]
    assert rss_slope(times, [200.0 + t / 120.0 for t in times]) == pytest.approx(0.5)


def test_slope_needs_a_few_samples_apart_in_time() -> None:
    assert math.isnan(rss_slope([0.0, 10.0], [1.0, 2.0]))
    assert math.isnan(rss_slope([5.0] * MIN_TREND_SAMPLES, [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        rss_slope([0.0, 1.0, 2.0], [1.0, 2.0])


def test_a_flat_series_passes_whatever_its_warm_up_did() -> None:
    noise = random.Random(7)
    # Two minutes of warm-up, then 28 minutes flat within +-0.5 MB.
    readings = series(warming_then([400.0 + noise.uniform(-0.5, 0.5) for _ in range(168)]))
    trend = memory_trend('detector', 42, readings, start_s=START_S, warm_up_s=120.0)
    assert trend.passed, trend
    assert abs(trend.slope_mb_per_min) < GOAL_MB_PER_MIN
    assert trend.samples == 180 and trend.trend_samples == 168
    assert trend.start_rss_mb == 100.0
    assert trend.warm_rss_mb == pytest.approx(400.0, abs=0.5)
    assert trend.max_rss_mb == pytest.approx(400.5, abs=0.5)
    assert trend.cpu_percent == pytest.approx(50.0)
    # Fitting over the warm-up too would have blamed the start-up.
    everything = memory_trend('detector', 42, readings, start_s=START_S, warm_up_s=0.0)
    assert not everything.passed


def test_a_leaking_series_fails() -> None:
    noise = random.Random(11)
    # 0.3 MB/min: 0.05 MB per 10 s sample, under noise larger than each step.
    leaking = [400.0 + 0.05 * i + noise.uniform(-0.5, 0.5) for i in range(168)]
    trend = memory_trend('preprocess', 43, series(warming_then(leaking)), start_s=START_S,
                         warm_up_s=120.0)
    assert not trend.passed
    assert trend.slope_mb_per_min == pytest.approx(0.3, abs=0.05)
    assert trend.end_rss_mb > trend.warm_rss_mb
    assert trend.as_dict()['passed'] is False
    # A leak goes on: the later half shows it too.
    assert trend.late_slope_mb_per_min == pytest.approx(0.3, abs=0.1)


def test_a_step_fails_the_goal_but_shows_flat_in_the_later_half() -> None:
    # Memory taken once, a third of the way in, then none: judged like a leak (the goal
    # is on the whole trend), told apart by the later half.
    step = [400.0] * 56 + [403.0] * 112
    trend = memory_trend('preprocess', 43, series(warming_then(step)), start_s=START_S,
                         warm_up_s=120.0)
    assert not trend.passed
    assert trend.late_slope_mb_per_min == pytest.approx(0.0, abs=1e-9)


def test_a_slow_leak_just_over_the_goal_fails() -> None:
    readings = series([300.0 + 0.12 * i / 6.0 for i in range(180)])
    trend = memory_trend('camera', 44, readings, start_s=START_S, warm_up_s=120.0)
    assert trend.slope_mb_per_min == pytest.approx(0.12)
    assert not trend.passed


def test_too_few_samples_after_the_warm_up_fail_without_a_slope() -> None:
    trend = memory_trend('camera', 44, series([100.0, 101.0, 102.0]), start_s=START_S,
                         warm_up_s=15.0)
    assert trend.trend_samples == 1
    assert math.isnan(trend.slope_mb_per_min) and not trend.passed
    assert trend.as_dict()['slope_mb_per_min'] is None
    empty = memory_trend('camera', 44, [], start_s=START_S, warm_up_s=0.0)
    assert empty.samples == 0 and not empty.passed


def numbered(count: int, *, skip: tuple[int, ...] = (), first: int = 1) -> DetectionTally:
    tally = DetectionTally()
    for sequence in range(first, first + count):
        if sequence not in skip:
            tally.count('0123456789abcdef', sequence)
    return tally


def node(received: int, processed: int, **dropped: int) -> dict[str, str]:
    """Counters as a node reports them on /diagnostics: strings."""
    values = {'received': str(received), 'processed': str(processed),
              'dropped': str(sum(dropped.values()))}
    values.update({f'dropped.{reason}': str(n) for reason, n in dropped.items()})
    return values


def good_counters() -> dict[str, dict[str, str]]:
    return {
        '/camera': node(1000, 995, no_subscriber=5),
        # Three frames sent before it took its first: lost on the way, not a fault.
        '/preprocess': node(992, 990, not_received=2),
        '/detector': node(990, 600, superseded=390),
    }


def test_counters_that_add_up_pass_and_report_what_was_lost() -> None:
    check = check_counters(good_counters(), numbered(600, skip=(7,)), final=CHAIN)
    assert check.passed, check.problems
    assert check.lost() == {'camera -> preprocess': 3, 'preprocess -> detector': 0,
                            'detector -> soak': 1}
    assert check.detections.gaps == 1 and check.detections.received == 599
    assert check.as_dict()['accounting']['nodes']['detector']['in_flight'] == 0


def test_a_node_whose_frames_do_not_add_up_fails() -> None:
    counters = good_counters()
    counters['/preprocess'] = node(992, 980, not_received=2)
    check = check_counters(counters, numbered(600), final=CHAIN)
    assert not check.passed
    assert any("'preprocess'" in p and '10 frame(s) unaccounted' in p for p in check.problems)


def test_a_dropped_total_that_is_not_its_reasons_fails() -> None:
    counters = good_counters()
    counters['/detector'] = {**node(990, 600, superseded=390), 'dropped': '391'}
    assert not check_counters(counters, numbered(600), final=CHAIN).passed


def test_more_received_than_sent_fails() -> None:
    counters = good_counters()
    counters['/preprocess'] = node(1000, 998, not_received=2)
    check = check_counters(counters, numbered(600), final=CHAIN)
    assert any('camera' in p and 'only 995 sent' in p for p in check.problems)


def test_detections_the_detector_never_numbered_fail() -> None:
    check = check_counters(good_counters(), numbered(601), final=CHAIN)
    assert any('601' in p and 'beyond' in p for p in check.problems)


def test_missing_counters_or_final_reports_fail() -> None:
    counters = good_counters()
    del counters['/preprocess']
    missing = check_counters(counters, numbered(600), final=CHAIN)
    assert missing.accounting is None and not missing.passed
    assert any("'preprocess'" in p for p in missing.problems)
    unfinished = check_counters(good_counters(), numbered(600), final=('camera', 'detector'))
    assert unfinished.problems == (
        "node 'preprocess': no final report (it did not stop cleanly, or its report was "
        'lost); its last counters are used',)


def test_the_report_shows_the_counters_it_has_when_a_node_is_missing() -> None:
    counters = good_counters()
    del counters['/detector']
    report = SoakReport(
        settings=SoakSettings(), ran_s=600.0, series={'camera': series([100.0] * 20)},
        trends=(memory_trend('camera', 44, series([100.0] * 20), start_s=START_S,
                             warm_up_s=0.0),),
        counters=check_counters(counters, numbered(600), final=('camera', 'preprocess')),
        exited_early={'detector': -9})
    text = report.text()
    assert '/preprocess: received 992, processed 990, dropped 2, dropped.not_received 2' in text
    assert "Nodes that ended early: {'detector': -9}" in text
    assert 'camera' in text and 'PASS' in text and text.endswith('Soak: FAIL')
    assert not report.passed


def test_the_tally_tells_gaps_repeats_and_forgeries_apart() -> None:
    tally = numbered(5, skip=(3,))
    tally.count('0123456789abcdef', 4)
    tally.count('0123456789abcdef', 10 ** 9)
    tally.count('', 0)
    assert (tally.received, tally.gaps, tally.repeated, tally.implausible,
            tally.unnumbered) == (5, 1, 1, 1, 1)
    assert (tally.first, tally.last, tally.publishers) == (1, 5, 1)
    forged = check_counters(good_counters(), tally, final=CHAIN)
    assert any('implausible' in p for p in forged.problems)


def test_settings_that_leave_no_trend_are_refused() -> None:
    with pytest.raises(ValueError, match='too short'):
        SoakSettings(duration_s=60.0, warm_up_s=59.0, sample_period_s=2.0).check()
    with pytest.raises(ValueError, match='fps'):
        SoakSettings(fps=0.0).check()
    SoakSettings().check()


def test_the_command_defaults_to_half_an_hour_at_30_fps() -> None:
    args = build_parser().parse_args(['soak'])
    assert (args.minutes, args.fps, args.warm_up, args.model, args.output) == (
        30.0, 30.0, 2.0, DEFAULT_MODEL, None)


@pytest.mark.ros
@pytest.mark.usefixtures('ros_context', 'bundled_model_dir')
def test_a_short_soak_through_the_real_nodes(tmp_path: Path) -> None:
    settings = SoakSettings(duration_s=25.0, fps=10.0, warm_up_s=5.0, sample_period_s=0.5,
                            width=320, height=240)
    lines: list[str] = []
    report = run_soak(settings, progress=lines.append)
    assert not report.exited_early, report.exited_early
    assert lines, 'no progress reported'
    assert [trend.name for trend in report.trends] == list(CHAIN)
    for trend in report.trends:
        readings = report.series[trend.name]
        assert len(readings) == trend.samples
        assert trend.trend_samples >= MIN_TREND_SAMPLES, trend
        assert [r.time_s for r in readings] == sorted(r.time_s for r in readings)
        assert math.isfinite(trend.slope_mb_per_min), trend
        assert trend.end_rss_mb > 0 and trend.max_rss_mb >= trend.end_rss_mb
    check = report.counters
    assert check.passed, '\n'.join(check.problems) + '\n' + report.text()
    assert check.detections.received > 0
    assert check.accounting is not None
    assert check.accounting.frames_out == check.detections.received
    text = report.text()
    assert all(name in text for name in CHAIN) and 'Counters: add up' in text

    samples, summary = report.write(tmp_path)
    with samples.open() as stream:
        rows = list(csv.DictReader(stream))
    assert {row['process'] for row in rows} == set(CHAIN)
    assert len(rows) == sum(trend.samples for trend in report.trends)
    written = json.loads(summary.read_text())
    assert set(written['processes']) == set(CHAIN)
    assert written['counters']['passed'] is True
    assert written['passed'] == report.passed
