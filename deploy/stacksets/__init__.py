"""The StackSet deployer: ``manifest`` (validation), ``plan`` (a pure diff), ``aws`` (the only
AWS calls), ``rollout`` (the executor) and ``commands`` (plan, apply, status, drift, destroy)."""
