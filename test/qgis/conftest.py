"""QGIS tests: pytest-qgis gives the application; this registers our provider once."""

import pytest


@pytest.fixture(scope="session")
def provider(qgis_app, qgis_processing):
    """Our Processing provider, registered in the test application's registry."""
    from qgis.core import QgsApplication

    from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("glaciervelocity")
    if existing is not None:
        yield existing
        return
    prov = GlacierVelocityProvider()
    registry.addProvider(prov)
    yield prov
    registry.removeProvider(prov)


@pytest.fixture
def run_alg(provider):
    """Run ``glaciervelocity:<id>`` with a parameter dict; returns the results dict."""
    import processing

    def _run(alg_id, params, feedback=None):
        from qgis.core import QgsProcessingFeedback
        return processing.run(f"glaciervelocity:{alg_id}", params,
                              feedback=feedback or QgsProcessingFeedback())

    return _run
