"""Template builders for secure multi-account SageMaker deployment.

Every builder is a pure function returning a troposphere ``Template``; the command in
``generator.__main__`` renders the registry in ``generator.registry`` into ``templates/``.
"""
