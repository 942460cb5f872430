"""Connect Four: the exact solver (`solver`) and move-by-move grading on stored test sets (`grading`)."""
