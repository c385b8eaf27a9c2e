"""Roll the generated templates out as CloudFormation StackSets and publish them to Service Catalog.

Sub-packages by concern: ``stacksets`` (the deployer), ``catalog`` (the publisher), ``flows``
(the seed flows), ``common`` (what they share). The local AWS is the separate ``localaws``
package, never imported from here except by the ``local`` command.
"""
