"""Every help reads as written in the toolbox: rendered by QGIS's own algorithm dialog (which makes
each line of ``shortHelpString()`` a paragraph of rich text), paragraphs end where sentences end,
and nothing is swallowed as an HTML tag (``series/<sensor>/`` shows as written)."""

import re

import pytest


@pytest.fixture(scope="module")
def render(qgis_app):
    """A function returning the paragraphs QGIS's dialog shows for an algorithm's help."""
    from qgis.gui import QgsProcessingAlgorithmDialogBase
    from qgis.PyQt.QtWidgets import QTextBrowser

    class Dialog(QgsProcessingAlgorithmDialogBase):
        def createProcessingParameters(self, flags=None):  # noqa: N802 (QGIS's name)
            return {}

    dialog = Dialog()
    browser = dialog.findChild(QTextBrowser, "textShortHelp")

    def paragraphs(alg):
        dialog.setAlgorithm(alg)
        block, out = browser.document().begin(), []
        while block.isValid():
            if block.text().strip():
                out.append(block.text().strip())
            block = block.next()
        return out

    yield paragraphs
    dialog.deleteLater()


def _words(text):
    return " ".join(text.split())


def test_help_renders_as_paragraphs(provider, render):
    from glacier_velocity.processing_provider.base import GlacierAlgorithm

    algs = [a for a in provider.algorithms() if isinstance(a, GlacierAlgorithm)]
    assert len(algs) >= 20
    for alg in algs:
        # written as paragraphs: a line break only between paragraphs or before a list item
        hard = re.search(r"[^\n]\n(?!\n|- |\d+\. )", alg.HELP)
        assert not hard, f"{alg.id()}: HELP is hard-wrapped at " \
                         f"{alg.HELP[max(hard.start() - 40, 0):hard.end() + 20]!r}"
        shown = render(alg.create())
        assert shown[0] == alg.displayName()  # the dialog's title
        body = shown[1:]
        # nothing swallowed: every word of the help and of each parameter's explanation is shown
        rendered = _words(" ".join(body))
        names = [p.name() for p in alg.parameterDefinitions()]
        names += [o.name() for o in alg.outputDefinitions()]
        for text in [alg.HELP, *(alg.PARAM_HELP[n] for n in names if n in alg.PARAM_HELP)]:
            assert _words(text) in rendered, f"{alg.id()}: {text[:60]}… not shown as written"
        # help is plain text (escaped once by rich_help): no entity shows as written
        entity = re.search(r"&(lt|gt|amp|quot|#\d+);", rendered)
        assert not entity, f"{alg.id()}: '{rendered[entity.start() - 30:entity.end() + 10]}'"
        # a paragraph breaks where a sentence ends; list items are one line each
        for para in body:
            if para.startswith("- "):
                continue
            assert para[0].isupper() or para[0].isdigit() or para[0] in "\"'", \
                f"{alg.id()}: paragraph starts mid-sentence: {para[:60]}"
            assert re.search(r"[.:?!]\)?$", para), f"{alg.id()}: paragraph ends mid-sentence: " \
                                                  f"…{para[-60:]}"
        assert "Parameters:" in body
        assert len(body) >= 2 + len(alg.parameterDefinitions())


def test_angle_brackets_show_as_written(provider, render):
    shown = " ".join(render(provider.algorithm("generatescene").create()))
    assert "series/<sensor>/" in shown
    shown = " ".join(render(provider.algorithm("correlatebatch").create()))
    assert "<sensor>_<start>_<end>.tif" in shown
    shown = " ".join(render(provider.algorithm("invertseries").create()))
    assert "beside OUTPUT as <name>_error.tif" in shown


def test_model_help_renders_as_paragraphs(provider, render):
    from glacier_velocity.processing_provider.provider import ShippedModel

    models = [a for a in provider.algorithms() if isinstance(a, ShippedModel)]
    assert len(models) == 3  # full chain, one pair, inversion chain
    for model in models:
        shown = render(model.create())
        assert len(shown) >= 2 and len(shown[1]) > 200, model.id()  # one whole description


def test_enum_choices_are_readable(provider):
    """Dialog choices are words, not codes; the codes stay in brackets and the values (indices)
    stay what scripts pass (pixeltrend METHOD=0 is ols_annual)."""
    from glacier_velocity.core.trends.pixel import USER_METHODS

    for alg in provider.algorithms():
        for p in alg.parameterDefinitions():
            if p.type() == "enum":
                for option in p.options():
                    assert not re.fullmatch(r"[a-z0-9]+_[a-z0-9_]+", option), \
                        f"{alg.id()} {p.name()}: '{option}' is a code"
    options = provider.algorithm("pixeltrend").parameterDefinition("METHOD").options()
    assert options[0] == "OLS on annual means, Student t test (ols_annual)"
    assert [o.rsplit("(", 1)[1].rstrip(")") for o in options] == list(USER_METHODS)
