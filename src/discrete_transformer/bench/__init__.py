"""The benchmark behind ``dtx bench`` and ``dtx speed`` (DESIGN §5).

:mod:`.suite` resolves ``--suite`` into tasks, :mod:`.runner` runs one task job (DT under the
per-task budget → extraction and verification → GRU and Transformer baselines → one row),
:mod:`.executors` runs jobs in local processes or on Ray, :mod:`.bench` orchestrates and resumes,
:mod:`.report` writes CSV, JSON and Markdown, :mod:`.live` shows the live table and
:mod:`.speed` holds the micro-benchmarks.
"""
