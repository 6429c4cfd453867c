"""`/claude-admin`: the one dispatcher, and the admin overview of the App Home."""
