"""One QGIS process for many algorithm runs, each run the way qgis_process runs one.

QGIS 3.22's qgis_process runs one algorithm per call and spends ~3-4 s of CPU starting up each
time. The demo's runner (demo/qgis_runner.py) and the bad-input matrix's (test/cli/
bad_input_runner.py) start QGIS once with :func:`start` and make each run with :func:`run`.
The plugin must be importable as ``glacier_velocity`` (e.g. from .build/plugins).
"""

import os


def start():
    """A headless QgsApplication with the Glacier Velocity provider registered:
    ``(app, registry, provider)``; keep them referenced and call :func:`stop` at the end."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

    provider = GlacierVelocityProvider()  # models need it registered for their children
    registry = QgsApplication.processingRegistry()
    registry.addProvider(provider)
    return app, registry, provider


def stop(app, registry, provider):
    """A clean exit: nothing left registered or open that crashes QGIS at exit."""
    registry.removeProvider(provider)
    app.exitQgis()


def run(alg, params, feedback):
    """Run ``alg`` on ``params`` as qgis_process does: outputs not given that are created by
    default go to TEMPORARY_OUTPUT, ``checkParameterValues``, then ``run`` (whose ``ok`` is
    qgis_process's exit code). Returns ``(ok, outputs, message)``, the message of a refused
    check ('' otherwise; what the run reported is in ``feedback``)."""
    from qgis.core import QgsProcessingContext

    context = QgsProcessingContext()
    context.setFeedback(feedback)
    params = dict(params)
    for p in alg.destinationParameterDefinitions():
        if p.name() not in params and p.createByDefault():
            params[p.name()] = "TEMPORARY_OUTPUT"
    ok, message = alg.checkParameterValues(params, context)
    outputs = {}
    if ok:
        outputs, ok = alg.run(params, context, feedback)
        message = ""
    del context
    return bool(ok), outputs or {}, message
