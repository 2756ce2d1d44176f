"""Training: the loop, losses, schedules, batch plan, validation, logging."""
