"""QGIS tests: pytest-qgis gives the application; this registers our provider."""

import pytest

# Python must keep a reference to a registered provider, or it is collected and its algorithms vanish.
_REGISTERED = []


@pytest.fixture
def provider(qgis_app, qgis_processing):
    """Our Processing provider as registered now (registered first if needed; it stays registered).

    Function-scoped on purpose: a test may set the provider aside (the plugin-load tests do), and
    the registry deletes what it removes, so a provider object must never outlive one test.
    """
    from qgis.core import QgsApplication

    from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

    registry = QgsApplication.processingRegistry()
    prov = registry.providerById("glaciervelocity")
    if prov is None:
        prov = GlacierVelocityProvider()
        registry.addProvider(prov)
        _REGISTERED[:] = [prov]
    return prov


@pytest.fixture
def run_alg(provider):
    """Run ``glaciervelocity:<id>`` with a parameter dict; returns the results dict."""
    import processing

    def _run(alg_id, params, feedback=None):
        from qgis.core import QgsProcessingFeedback
        return processing.run(f"glaciervelocity:{alg_id}", params,
                              feedback=feedback or QgsProcessingFeedback())

    return _run
