"""Statistics on fggp-repro run records: summaries, confidence intervals, paired tests, ranks,
claims audit, figures and tables. Never imports torch."""
