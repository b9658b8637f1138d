"""A tenant's setup page: the PowerShell and Google Workspace steps filled in with its
values, and the live check (shared by /admin/setup and the partner console)."""
