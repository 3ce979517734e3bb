"""The paper's outputs: the published reference values (``reference/``, each row with its source), the results
of a run gathered into tables (``tables.py``), written as CSV, Markdown and LaTeX (``render.py``)."""
