"""Hard checks: SQL policy, SQL execution and result comparison, code oracles."""
