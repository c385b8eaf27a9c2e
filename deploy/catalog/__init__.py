"""The Service Catalog publisher: ``model`` (the catalog file), ``plan`` (a pure plan of
actions), ``aws`` (the only AWS calls) and ``command`` (``publish``)."""
