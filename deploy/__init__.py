"""Roll the generated templates out as CloudFormation StackSets and publish them to Service Catalog."""
