"""Who may do what: roles and grants, role changes, user groups, role policies, access requests."""
