"""Following an execution while it runs, and reporting on it when it ends."""
