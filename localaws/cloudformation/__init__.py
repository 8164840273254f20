"""CloudFormation: boot `template.yaml` into moto, and the resource types moto lacks."""
