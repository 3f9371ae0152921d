"""Step Functions: AWS's payload and naming limits on top of moto's API and ASL interpreter."""
