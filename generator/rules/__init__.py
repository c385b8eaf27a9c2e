"""Custom cfn-lint rules: the product's security invariants (E9101-E9901).

Loaded by directory, not as a package: ``cfn-lint --append-rules generator/rules`` and the
generator's own lint gate (``generator.lint``, which appends them when this file exists).
cfn-lint imports each ``[A-Za-z1-9]*.py`` file here as a top-level module; the shared
analysis lives in ``_common.py``, which the rule files load by path.
"""
