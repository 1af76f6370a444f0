"""What every layer uses: errors, atomic writes, the output rule, hyper-parameter
declarations, label sets, quiet logs."""
