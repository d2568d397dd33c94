"""What counts against Dify's limit and what survives a process: budgets, ledgers, shared caches."""
