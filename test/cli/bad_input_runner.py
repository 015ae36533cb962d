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


def main(cases_path, results_path):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import (QgsApplication, QgsProcessingContext, QgsProcessingFeedback)

    app = QgsApplication([], False)
    app.initQgis()
    from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

    provider = GlacierVelocityProvider()  # kept referenced for the whole run
    registry = QgsApplication.processingRegistry()
    registry.addProvider(provider)

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
        context = QgsProcessingContext()
        feedback = Recorder()
        context.setFeedback(feedback)
        params = dict(case["params"])
        for p in alg.destinationParameterDefinitions():  # as qgis_process: outputs not given
            if p.name() not in params and p.createByDefault():
                params[p.name()] = "TEMPORARY_OUTPUT"
        ok, message = alg.checkParameterValues(params, context)
        outputs = {}
        if ok:
            outputs, ok = alg.run(params, context, feedback)
        else:
            feedback.lines.append(message)
        results[case["id"]] = {"ok": bool(ok), "log": "\n".join(feedback.lines),
                               "outputs": {k: str(v) for k, v in (outputs or {}).items()}}
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    # a clean exit too: failed runs must leave nothing (open datasets) that crashes QGIS at exit
    registry.removeProvider(provider)
    app.exitQgis()


if __name__ == "__main__":
    main(*sys.argv[1:3])
