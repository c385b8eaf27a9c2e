"""The Service Catalog publisher, in four layers that only call downwards:

- ``model``: the catalog file (schema, loading, the desired portfolio, products and shares;
  share targets in the reference grammar of :mod:`deploy.common.refs`);
- ``plan``: the live state as plain data, one typed action per change, and ``plan_publish``
  (pure: no AWS);
- ``aws``: ``CatalogPublisher``, the only AWS calls (resolve share targets, read the live
  state, execute a plan action by action);
- ``command``: ``python -m deploy publish``, which loads, reads, plans, prints and executes.
"""
