"""CloudFormation: a stack whose creation fails is rolled back, as AWS rolls it back.

moto 5.2.5 stores a new stack before creating its resources and, when one of them fails
(the emulator's patches fail resources as AWS's handlers do), leaves it CREATE_IN_PROGRESS
with the resources created so far and outputs still pointing at the failed resource:
every later DescribeStacks of that account then evaluates those outputs, tries to create
the failed resource again and answers HTTP 500.

AWS: CreateStack's OnFailure "Determines what action will be taken if stack creation
fails" and its "Default: ROLLBACK"; DisableRollback: "Set to true to disable rollback of
the stack if stack creation failed ... Default: false" (botocore's model of CreateStack).
A rolled-back creation ends ROLLBACK_COMPLETE (a StackStatus of the model) and, as a
rollback removes what the failed operation made, without its resources or outputs. Here:
the resources created are deleted, the stack is ROLLBACK_COMPLETE with its events and no
outputs, and the error is still raised (the emulator answers a failed resource on the
CreateStack call, README). A ROLLBACK_COMPLETE stack keeps its name, so creating it again
fails with AlreadyExistsException until it is deleted. ``DisableRollback`` / ``OnFailure``
are not honoured (moto drops them): the default always applies. A stack set instance's
stack is deleted instead (OnFailure DELETE, ``stacksets.py``).
"""

from __future__ import annotations

from moto.cloudformation import models

_original_create_resources = models.Stack.create_resources
_original_outputs = models.Stack.outputs


def _create_resources(self) -> None:
    try:
        _original_create_resources(self)
    except Exception:
        self.status = "ROLLBACK_IN_PROGRESS"
        self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason="The following resource(s) failed")
        try:
            self.resource_map.delete()
        except Exception:  # a resource that cannot be deleted stays; the stack is still rolled back
            pass
        self.status = "ROLLBACK_COMPLETE"
        self._add_stack_event("ROLLBACK_COMPLETE")
        raise


def _outputs(self):
    if self.status in ("ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE"):
        return None  # a stack whose creation was rolled back has no outputs
    return _original_outputs.fget(self)


def apply() -> None:
    """Roll back stacks whose creation fails (idempotent)."""
    models.Stack.create_resources = _create_resources
    models.Stack.outputs = property(_outputs)
