"""The experiment report: everything we publish about one experiment, one concept a module.

- :mod:`experiments.report.data`: the report itself, JSON-able data built from the
  experiment's configuration and unit table (:func:`~experiments.report.data.experiment_report`);
- :mod:`experiments.report.ship_decision`: ship, don't ship or keep running, and why
  (:func:`~experiments.report.ship_decision.ship_decision`);
- :mod:`experiments.report.plots`: matplotlib figures of a report, as base64 PNG;
- :mod:`experiments.report.render`: the self-contained HTML page, rendered with Jinja2 from
  ``templates/`` (:func:`~experiments.report.render.render_html`).

Import from those modules; this package re-exports nothing.
"""
