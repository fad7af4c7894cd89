"""Who may do what, and the record of what they did: the built-in roles (Django groups), the
permissions the dashboard's pages and exports declare, and the append-only audit log."""
