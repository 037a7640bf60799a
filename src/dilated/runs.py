"""Moved to :mod:`dilated.training.runs`; this alias stays for code written against the old path."""

from dilated.training.runs import (  # noqa: F401 - re-exported
    HISTORY_COLUMNS,
    RunDir,
    default_run_dir,
    history_csv,
    locate,
    report,
    test_csv,
)
