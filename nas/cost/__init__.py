"""What a search cost: the ledger, energy, forecasts, break-even, the machine it ran on."""
