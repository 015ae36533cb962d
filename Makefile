# Glacier Velocity — every target works on a fresh Debian bookworm machine (as root, or with sudo).
#   make demo    install what is missing, then run the whole chain headless on the sample scene
#                (DEMO_SIZE=small: the 6 km scene for the per-algorithm steps, a few minutes longer)
#   make test    install what is missing, then run all tests (core, QGIS, qgis_process)

SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
VPY := $(VENV)/bin/python
DEB_PACKAGES := qgis python3-qgis python3-gdal python3-scipy python3-pyqtgraph \
                python3-matplotlib python3-venv python3-pip gdal-bin \
                python3-netcdf4 python3-xarray python3-dask python3-zarr python3-distributed
# scikit-image is not a plugin dependency: only the correlation benchmark's baseline uses it
BENCH_DEB_PACKAGES := python3-skimage
# the real QGIS desktop headless (screenshots, desktop-check): Xvfb and ImageMagick's import
DESKTOP_DEB_PACKAGES := xvfb xauth imagemagick
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
QGIS_PROFILE ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= $(CURDIR)/.build/runtime
# the demo's sample scene: tiny (3 km) keeps `make demo` to a few minutes; small (6 km) is richer
DEMO_SIZE ?= tiny
PYTEST := $(VPY) -m pytest -ra --timeout=1200

.PHONY: link setup deb test test-core test-qgis demo bench ticoi-venv install uninstall zip lint screenshots \
        desktop-check \
        docs clean

setup: deb $(VENV)/.stamp

# .build/plugins/glacier_velocity -> this checkout, before anything imports the plugin
link:
	@scripts/link-plugin >/dev/null

# Debian's QGIS 3.22 and scientific stack; only what is missing is installed.
deb:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# A venv over the system site-packages (qgis, numpy, scipy...) for test-only PyPI packages.
$(VENV)/.stamp: requirements-dev.txt
	$(PY) -m venv --system-site-packages $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	touch $@

test: setup test-core test-qgis

test-core: setup link
	$(PYTEST) -p no:qgis test/core

test-qgis: setup link
	$(PYTEST) test/qgis test/cli

demo: setup link
	$(VPY) demo/run_demo.py --out demo_output --size $(DEMO_SIZE)

bench: setup ticoi-venv
	@$(MAKE) --no-print-directory deb EXTRA_DEB_PACKAGES="$(BENCH_DEB_PACKAGES)"
	$(VPY) bench/run.py

# TICOI (PyPI ticoi, numpy 2) for bench/bench_inversion.py only: its own venv WITHOUT the system
# site-packages, so its numpy never meets Debian's GDAL; the bench talks to it through .npz files.
TICOI_VENV := .build/ticoi-venv
ticoi-venv: $(TICOI_VENV)/.stamp
$(TICOI_VENV)/.stamp:
	$(PY) -m venv $(TICOI_VENV)
	$(TICOI_VENV)/bin/pip install -q --disable-pip-version-check ticoi==0.1.2
	touch $@

# Screenshots of the real QGIS desktop under Xvfb (docs/*.png, shown in the README): a private
# profile with the plugin enabled, QGIS runs scripts/screenshots.py once it is up.
SHOTS := .build/screenshots
screenshots: setup
	@$(MAKE) --no-print-directory deb EXTRA_DEB_PACKAGES="$(DESKTOP_DEB_PACKAGES)"
	rm -rf $(SHOTS)/profiles && mkdir -p $(SHOTS)/profiles/default/python/plugins $(SHOTS)/profiles/default/QGIS
	ln -sfn "$(CURDIR)" $(SHOTS)/profiles/default/python/plugins/glacier_velocity
	printf '[PythonPlugins]\nglacier_velocity=true\n' > $(SHOTS)/profiles/default/QGIS/QGIS3.ini
	QT_QPA_PLATFORM=xcb GV_SCRIPTS="$(CURDIR)/scripts" GV_SCREENSHOTS="$(CURDIR)/docs" GV_WORK="$(CURDIR)/$(SHOTS)/work" \
	  timeout 900 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path "$(CURDIR)/$(SHOTS)" \
	  --noversioncheck --nologo --code scripts/screenshots.py

# The plugin tried in the real QGIS desktop under Xvfb (scripts/desktop_check.py): toolbox, the
# newer algorithms' dialogs, a run from a dialog, the models in the modeler, a plugin reload, the
# dock. Pictures and findings in .build/desktop-check; fails when a check fails.
CHECK := .build/desktop-check
desktop-check: setup
	@$(MAKE) --no-print-directory deb EXTRA_DEB_PACKAGES="$(DESKTOP_DEB_PACKAGES)"
	rm -rf $(CHECK)/profiles && mkdir -p $(CHECK)/profiles/default/python/plugins $(CHECK)/profiles/default/QGIS
	ln -sfn "$(CURDIR)" $(CHECK)/profiles/default/python/plugins/glacier_velocity
	printf '[PythonPlugins]\nglacier_velocity=true\n' > $(CHECK)/profiles/default/QGIS/QGIS3.ini
	QT_QPA_PLATFORM=xcb GV_SCRIPTS="$(CURDIR)/scripts" GV_CHECK="$(CURDIR)/$(CHECK)" \
	  timeout 900 xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path "$(CURDIR)/$(CHECK)" \
	  --noversioncheck --nologo --code scripts/desktop_check.py

install:
	mkdir -p "$(QGIS_PROFILE)/python/plugins"
	ln -sfn "$(CURDIR)" "$(QGIS_PROFILE)/python/plugins/glacier_velocity"
	@echo "Linked into $(QGIS_PROFILE)/python/plugins/glacier_velocity: enable it in Plugins > Manage and Install Plugins."

uninstall:
	rm -f "$(QGIS_PROFILE)/python/plugins/glacier_velocity"

# docs/ALGORITHMS.md, generated from the algorithms (a test checks it is current).
docs: setup link
	$(VPY) scripts/document_algorithms.py

zip:
	$(PY) scripts/make_zip.py dist

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf .build dist demo_output bench_output .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
