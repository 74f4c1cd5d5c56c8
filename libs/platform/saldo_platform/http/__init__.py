"""HTTP conventions shared by every service (DESIGN.md, "HTTP conventions")."""
