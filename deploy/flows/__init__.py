"""The cross-account flows of the seeds: ``invoke`` and ``share-model-group``.

``cli`` (the argument parsers and handlers that print), ``aws`` (the calls: assume the
invoke role, check and invoke the endpoint, read and write the shared policies and KMS
grants) and ``policies`` (pure: the statements, their merge by Sid and the diff).
"""
