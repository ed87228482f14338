"""The dashboard: a local web page showing the runs of one or more stores, live (``afterlearner dashboard``).

* :mod:`~afterlearner.dashboard.data`: what it shows, read from stores opened read-only.
* :mod:`~afterlearner.dashboard.server`: the FastAPI app (same token and limits as the feedback page).
* ``page.html``: the page; ``static/``: uPlot (MIT licence, ``static/uPlot.LICENSE.txt``), inlined
  into the page so that it needs no network.

Documentation: docs/dashboard.md.
"""
