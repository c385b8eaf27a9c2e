"""What the StackSet deployer and the Service Catalog publisher share: errors and exit codes,
boto3 clients, the config loader, the reference grammar and Organizations resolver, and the
ownership tag."""
