"""Users, authentication, roles, the sharing policy, pseudonymisation and the audit chain."""
