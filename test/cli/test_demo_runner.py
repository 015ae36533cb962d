"""The demo's one QGIS process (demo/qgis_runner.py through DemoContext.qgis): several runs in
it give qgis_process's results, a failed run a clear message, and the process stays usable."""

import importlib.util
import os

import numpy as np
import pytest

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_stack, write_stack

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRID = Grid.from_bounds(420000, 3330000, 30, 20, 20, 32645)


@pytest.fixture
def demo_ctx(tmp_path):
    spec = importlib.util.spec_from_file_location("run_demo", os.path.join(ROOT, "demo",
                                                                           "run_demo.py"))
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    ctx = run_demo.DemoContext(str(tmp_path / "out"), "tiny")
    yield ctx
    ctx.close()


def test_runs_share_one_qgis_process(demo_ctx, tmp_path):
    # 24 months at 100 m/yr, one at 300 m/yr: the temporal filter (0.5x-1.5x of the yearly
    # reference) rejects exactly that month
    months = [Interval.month(2019 + k // 12, k % 12 + 1) for k in range(24)]
    v = np.full((24, *GRID.shape), 100.0, np.float32)
    v[5] = 300.0
    stack = write_stack(str(tmp_path / "v.tif"), GRID, v, months, "landsat", "v")
    outs = [str(tmp_path / f"filtered_{k}.tif") for k in range(2)]
    res = demo_ctx.qgis("temporalfilter", INPUT=stack, OUTPUT=outs[0])
    pid = demo_ctx._runner.pid
    assert res["OUTPUT"] == outs[0]
    with pytest.raises(RuntimeError, match="INPUT") as failed:
        demo_ctx.qgis("temporalfilter", INPUT=str(tmp_path / "missing.tif"), OUTPUT=outs[1])
    assert "Traceback" not in str(failed.value)
    demo_ctx.qgis("temporalfilter", INPUT=stack, OUTPUT=outs[1])
    assert demo_ctx._runner.pid == pid  # the failed run did not end it
    assert demo_ctx.cpu_seconds() > 0
    for path in outs:
        _, filtered = read_stack(path)
        assert np.isnan(filtered[5]).all()
        np.testing.assert_allclose(np.delete(filtered, 5, axis=0), 100.0)
