"""Run many bad-input cases in one QGIS process, the way qgis_process runs one.

QGIS 3.22's qgis_process runs one algorithm per call (~3 s of start-up each) and cannot run a
script; this runner does what it does for each case (``checkParameterValues``, then
``QgsProcessingAlgorithm.run`` whose ``ok`` is qgis_process's exit code) in one process, and
records every message the algorithm gave, so the matrix costs seconds. The cases marked ``cli``
are run through scripts/qgis-process itself as well (test_bad_input.py).

Usage: python3 bad_input_runner.py cases.json results.json (the plugin importable as
glacier_velocity, e.g. from .build/plugins).
"""

import json
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))


def main(cases_path, results_path):
    import qgis_session
    from qgis.core import QgsProcessingFeedback

    app, registry, provider = qgis_session.start()

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def reportError(self, error, fatalError=False):  # noqa: N802 (QGIS's names)
            self.lines.append(error)

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)

        def pushWarning(self, warning):  # noqa: N802
            self.lines.append(warning)

        def pushDebugInfo(self, info):  # noqa: N802
            self.lines.append(info)

        def pushConsoleInfo(self, info):  # noqa: N802
            self.lines.append(info)

    results = {}
    with open(cases_path) as f:
        cases = json.load(f)
    for case in cases:
        alg = registry.createAlgorithmById(f"glaciervelocity:{case['alg']}")
        feedback = Recorder()
        ok, outputs, message = qgis_session.run(alg, case["params"], feedback)
        if message:
            feedback.lines.append(message)
        results[case["id"]] = {"ok": bool(ok), "log": "\n".join(feedback.lines),
                               "outputs": {k: str(v) for k, v in outputs.items()}}
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    # a clean exit too: failed runs must leave nothing (open datasets) that crashes QGIS at exit
    qgis_session.stop(app, registry, provider)


if __name__ == "__main__":
    main(*sys.argv[1:3])
