"""The StackSet deployer: read live state, plan on plain data, execute, report.

- ``manifest``: the YAML manifest validated into frozen ``StackSetSpec``s, with the closed
  sets of the API as ``str`` enums (``PermissionModel``, ``CallAs``, ``AccountFilter``) and
  ``depends_on`` checked as a graph (``dependency_graph``; cycles named).
- ``plan``: the pure diff of a spec against a ``LiveStackSet`` into a ``StackSetPlan`` of
  ``Step``s (``StepKind``, ``PlanAction``), no AWS.
- ``aws``: ``StackSets``, the only module that calls AWS (reads live state, runs one step).
- ``rollout``: the executor; ``graphlib.TopologicalSorter`` starts each stack set once its
  dependencies are done and skips the dependents of a failed one (``OutcomeResult``).
- ``commands``: ``plan``, ``apply``, ``status``, ``drift``, ``destroy`` and their output.
"""
