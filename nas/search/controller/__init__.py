"""The controller: Optuna study, proposals, constraints, screening."""
