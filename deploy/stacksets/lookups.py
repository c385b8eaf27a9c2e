"""Resolve the manifest's lookups (``{env: X}``, ``{ssm: /p}``, ...) into values, at plan time.

Runs after the references are resolved and before any plan: each lookup is fetched once
(:class:`deploy.common.values.ValueResolver` caches), checked against the template's
constraints like a written value, and a value from a secret source makes its parameter
NoEcho for every output (``StackSetSpec.secret_parameters``) and is registered with the
output redaction. A lookup that cannot be resolved is an input error naming the file, the
stack set, the key and the source, never the value (exit 2, nothing changed).
"""

from __future__ import annotations

from dataclasses import replace

from deploy.common.errors import InputError
from deploy.common.redact import REDACTOR
from deploy.common.values import Lookup, LookupFailed, NotYetKnown, ValueResolver
from deploy.stacksets.manifest import KNOWN_AFTER_APPLY, ParameterValue, StackSetSpec, check_value


def resolve_lookups(
    specs: list[StackSetSpec], resolver: ValueResolver, source: str, final: bool = False
) -> list[StackSetSpec]:
    """``specs`` with every lookup replaced by its value (specs without lookups unchanged).

    An ``{output}`` of a stack set not deployed yet becomes KNOWN_AFTER_APPLY (the parameter is
    listed in ``deferred_parameters``) unless ``final``: then it is an input error.
    """
    return [resolve_spec(spec, resolver, source, final) if spec.lookups() else spec for spec in specs]


def resolve_spec(spec: StackSetSpec, resolver: ValueResolver, source: str, final: bool = False) -> StackSetSpec:
    """One spec's lookups resolved (see :func:`resolve_lookups`)."""
    where = f"stack set '{spec.name}'"
    secret: set[str] = set()
    deferred: set[str] = set()

    def values(pairs, prefix: str) -> tuple[tuple[str, ParameterValue], ...]:
        out: list[tuple[str, ParameterValue]] = []
        for name, value in pairs:
            if isinstance(value, Lookup):
                key = f"{prefix}.{name}"
                try:
                    resolved = resolver.resolve(value)
                except NotYetKnown as error:
                    if final:
                        raise InputError(f"{value.describe()}: {error}", source, where, key) from None
                    deferred.add(name)
                    out.append((name, KNOWN_AFTER_APPLY))
                    continue
                except LookupFailed as error:
                    raise InputError(f"{value.describe()}: {error}", source, where, key) from None
                if resolved.secret:
                    secret.add(name)
                    REDACTOR.add(resolved.value)
                hidden = resolved.secret or name in spec.masked_parameters()
                check_value(spec.template.parameters[name], resolved.value, source, where, key, secret=hidden)
                value = resolved.value
            out.append((name, value))
        return tuple(out)

    parameters = values(spec.parameters, "parameters")
    overrides = tuple(
        replace(o, parameters=values(o.parameters, f"overrides[{i}].parameters")) for i, o in enumerate(spec.overrides)
    )
    return replace(
        spec,
        parameters=parameters,
        overrides=overrides,
        secret_parameters=spec.secret_parameters | frozenset(secret),
        deferred_parameters=frozenset(deferred),
    )
